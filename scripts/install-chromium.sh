#!/usr/bin/env bash
# Installs the headless Chromium the UI tests drive (Debian's `chromium` package), once: a machine
# that already has one (or KUBIPAM_CHROMIUM pointing at one) is left alone. Called by .ci/run.
set -euo pipefail

if [ -n "${KUBIPAM_CHROMIUM:-}" ] && [ -x "${KUBIPAM_CHROMIUM}" ]; then
  echo "chromium: using KUBIPAM_CHROMIUM=${KUBIPAM_CHROMIUM}"
  exit 0
fi
for candidate in /usr/bin/chromium /usr/bin/chromium-browser /usr/lib/chromium/chromium; do
  if [ -x "$candidate" ]; then
    echo "chromium: already installed ($candidate)"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not found and no apt-get here; install Chromium and set KUBIPAM_CHROMIUM to its path" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "chromium: not found; run as root: apt-get install -y chromium" >&2
    exit 1
  fi
  SUDO="sudo"
fi
echo "chromium: installing Debian's chromium package"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium
