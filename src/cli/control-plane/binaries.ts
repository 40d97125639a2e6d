// Where etcd, kube-apiserver and kubectl for the local control plane come from, first match wins:
//
//   1. $KUBEBUILDER_ASSETS (the envtest convention);
//   2. kubipam's cache, ${XDG_CACHE_HOME:-~/.cache}/kubipam/control-plane/<version>;
//   3. setup-envtest's store, when it holds a matching version;
//   4. a download of the prebuilt envtest archive named by the index $KUBIPAM_ENVTEST_INDEX (default
//      the official one of controller-tools; `off` skips it), verified, into kubipam's cache;
//   5. a build with Go by scripts/control-plane-binaries.sh, into kubipam's cache.
//
// The version: any patch of the Kubernetes minor the project is tested with (newest first), or
// exactly $KUBIPAM_KUBERNETES_VERSION when set.

import { fileURLToPath } from "node:url";
import { downloadEnvtest } from "./envtest-download.ts";
import { DEFAULT_ENVTEST_INDEX, goPlatform, wantedVersion } from "./envtest-index.ts";
import {
  cacheRoot,
  type FoundBinaries,
  fromCache,
  fromKubebuilderAssets,
  fromSetupEnvtestStore,
  hasControlPlaneBinaries,
} from "./local-binaries.ts";
import { scriptFolder } from "./script-folder.ts";

/** scripts/control-plane-binaries.sh of this package. */
export const binariesScript = fileURLToPath(
  new URL("../../../scripts/control-plane-binaries.sh", import.meta.url),
);

const DEFAULT_TIMEOUT_SECONDS = 5;

export interface LocateOptions {
  /** Progress and the reasons for falling back (default: stderr, prefixed). */
  log?: (message: string) => void;
  /** Where the download's live progress line goes (default: stderr when it is a terminal). */
  progress?: NodeJS.WritableStream;
  /** Aborts a download in progress (Ctrl-C). */
  signal?: AbortSignal;
  /** This machine's platform and architecture as Node names them (for tests). */
  platform?: NodeJS.Platform;
  arch?: string;
}

function defaultLog(message: string): void {
  process.stderr.write(`control-plane binaries: ${message}\n`);
}

/** `$KUBIPAM_ENVTEST_INDEX`: unset means the official index; `off` means no download. */
export function envtestIndexUrl(env: NodeJS.ProcessEnv): string | undefined {
  const value = env.KUBIPAM_ENVTEST_INDEX?.trim();
  if (!value) return DEFAULT_ENVTEST_INDEX;
  if (value === "off") return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "http:" && url?.protocol !== "https:") {
    throw new Error(`KUBIPAM_ENVTEST_INDEX=${value} is neither an http(s) URL nor "off"`);
  }
  return url.href;
}

/** `$KUBIPAM_ENVTEST_TIMEOUT`: seconds to wait for the index server to answer (default 5). */
export function envtestTimeoutMs(env: NodeJS.ProcessEnv): number {
  const value = env.KUBIPAM_ENVTEST_TIMEOUT?.trim();
  if (!value) return DEFAULT_TIMEOUT_SECONDS * 1000;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new Error(`KUBIPAM_ENVTEST_TIMEOUT=${value} is not a positive number of seconds`);
  }
  return seconds * 1000;
}

/**
 * Sources 1–4: binaries already here or downloaded now. Undefined when none has them; the reasons
 * went to `log`. Rejects only for bad settings or when `signal` aborts.
 */
export async function findPrebuiltBinaries(
  env: NodeJS.ProcessEnv = process.env,
  options: LocateOptions = {},
): Promise<FoundBinaries | undefined> {
  const log = options.log ?? defaultLog;
  const wanted = wantedVersion(env);
  const indexUrl = envtestIndexUrl(env);
  const timeoutMs = envtestTimeoutMs(env);
  const node = options.platform ?? process.platform;
  const { os, arch } = goPlatform(node, options.arch ?? process.arch);
  const local =
    fromKubebuilderAssets(env, log) ??
    fromCache(env, wanted) ??
    fromSetupEnvtestStore(env, wanted, { node, os, arch });
  if (local) return local;
  if (!indexUrl) {
    log("KUBIPAM_ENVTEST_INDEX=off: not downloading prebuilt binaries");
    return undefined;
  }
  try {
    return await downloadEnvtest({
      indexUrl,
      wanted,
      os,
      arch,
      cacheRoot: cacheRoot(env),
      timeoutMs,
      log,
      progress: options.progress ?? (process.stderr.isTTY ? process.stderr : undefined),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    log(`no prebuilt binaries from ${indexUrl}: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

async function goBuild(env: NodeJS.ProcessEnv): Promise<string> {
  // KUBEBUILDER_ASSETS was looked at already; the script need not complain about it again.
  const dir = await scriptFolder(binariesScript, { ...env, KUBEBUILDER_ASSETS: "" });
  if (!hasControlPlaneBinaries(dir)) {
    throw new Error(`${binariesScript} printed ${dir}, which lacks etcd or kube-apiserver`);
  }
  return dir;
}

/**
 * The folder holding etcd, kube-apiserver and kubectl: `$KUBIPAM_BIN_DIR` when it has them (set by
 * the test runner for its children), otherwise the first of the sources above; says which was used.
 */
export async function resolveBinDir(
  env: NodeJS.ProcessEnv = process.env,
  options: LocateOptions = {},
): Promise<string> {
  const preset = env.KUBIPAM_BIN_DIR;
  if (preset && hasControlPlaneBinaries(preset)) return preset;
  const log = options.log ?? defaultLog;
  const found = await findPrebuiltBinaries(env, { ...options, log });
  if (found) {
    log(`using ${found.dir} (${found.source}${found.version ? `, Kubernetes ${found.version}` : ""})`);
    return found.dir;
  }
  log("falling back to building them with Go");
  const dir = await goBuild(env);
  log(`using ${dir} (Go build)`);
  return dir;
}
