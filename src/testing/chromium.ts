// Headless Chromium for the UI's tests, benchmark and screenshot: the system's Chromium (Debian's
// `chromium` package; `scripts/install-chromium.sh`) driven by playwright-core. Never downloads a
// browser; a missing one is an error that says how to install it.

import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"];

export const CHROMIUM_MISSING =
  "Chromium not found: the UI tests need a headless Chromium. Install it with " +
  "`sudo bash scripts/install-chromium.sh` (Debian/Ubuntu: `apt-get install -y chromium`), " +
  "or set KUBIPAM_CHROMIUM to the path of a Chromium or Chrome executable.";

/** KUBIPAM_CHROMIUM, else the first system Chromium found. */
export function chromiumExecutable(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.KUBIPAM_CHROMIUM;
  if (given) {
    if (!existsSync(given)) throw new Error(`KUBIPAM_CHROMIUM=${given} does not exist. ${CHROMIUM_MISSING}`);
    return given;
  }
  const found = CANDIDATES.find((path) => existsSync(path));
  if (!found) throw new Error(CHROMIUM_MISSING);
  return found;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumExecutable(),
    headless: true,
    // Chromium's sandbox refuses to run as root (CI containers); elsewhere it stays on.
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
}
