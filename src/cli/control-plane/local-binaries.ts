// Control-plane binaries that are already on this machine: $KUBEBUILDER_ASSETS, kubipam's own cache,
// and the store of setup-envtest (controller-runtime's tool, which many controller developers have).

import { accessSync, constants, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { compareVersionsNewestFirst, versionMatches, type WantedVersion } from "./envtest-index.ts";

export type BinarySource =
  | "KUBEBUILDER_ASSETS"
  | "kubipam cache"
  | "setup-envtest store"
  | "envtest download"
  | "Go build";

export interface FoundBinaries {
  /** Folder holding etcd, kube-apiserver and (except perhaps for KUBEBUILDER_ASSETS) kubectl. */
  dir: string;
  source: BinarySource;
  /** `vX.Y.Z` when known from the folder's name. */
  version?: string;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Whether `dir` holds executable etcd and kube-apiserver (and kubectl, when asked). */
export function hasControlPlaneBinaries(dir: string, withKubectl = false): boolean {
  const names = withKubectl ? ["etcd", "kube-apiserver", "kubectl"] : ["etcd", "kube-apiserver"];
  return names.every((name) => isExecutableFile(join(dir, name)));
}

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

/** `${XDG_CACHE_HOME:-~/.cache}/kubipam/control-plane` (as scripts/control-plane-binaries.sh). */
export function cacheRoot(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CACHE_HOME || join(home(env), ".cache"), "kubipam", "control-plane");
}

/** Where setup-envtest keeps its versions (controller-runtime's SetupEnvtestDefaultBinaryAssetsDirectory). */
export function setupEnvtestStore(
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform = process.platform,
): string {
  if (platform === "darwin")
    return join(home(env), "Library", "Application Support", "io.kubebuilder.envtest", "k8s");
  if (platform === "win32") return join(env.LocalAppData ?? home(env), "kubebuilder-envtest", "k8s");
  return join(env.XDG_DATA_HOME || join(home(env), ".local", "share"), "kubebuilder-envtest", "k8s");
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** `$KUBEBUILDER_ASSETS` when it holds etcd and kube-apiserver; `log` says why not otherwise. */
export function fromKubebuilderAssets(
  env: NodeJS.ProcessEnv,
  log: (message: string) => void,
): FoundBinaries | undefined {
  const dir = env.KUBEBUILDER_ASSETS;
  if (!dir) return undefined;
  if (hasControlPlaneBinaries(dir)) return { dir, source: "KUBEBUILDER_ASSETS" };
  log(`KUBEBUILDER_ASSETS=${dir} lacks an executable etcd or kube-apiserver; looking further`);
  return undefined;
}

/** The newest complete `<cache>/vX.Y.Z` that matches `wanted`. */
export function fromCache(env: NodeJS.ProcessEnv, wanted: WantedVersion): FoundBinaries | undefined {
  const root = cacheRoot(env);
  const version = entries(root)
    .filter((name) => versionMatches(name, wanted) && hasControlPlaneBinaries(join(root, name), true))
    .sort(compareVersionsNewestFirst)[0];
  return version ? { dir: join(root, version), source: "kubipam cache", version } : undefined;
}

/** The newest `<store>/X.Y.Z-<os>-<arch>` of setup-envtest that matches `wanted`. */
export function fromSetupEnvtestStore(
  env: NodeJS.ProcessEnv,
  wanted: WantedVersion,
  platform: { node: NodeJS.Platform; os: string; arch: string },
): FoundBinaries | undefined {
  const store = setupEnvtestStore(env, platform.node);
  const suffix = `-${platform.os}-${platform.arch}`;
  const found = entries(store)
    .filter((name) => name.endsWith(suffix))
    .map((name) => ({ name, version: `v${name.slice(0, -suffix.length)}` }))
    .filter(
      ({ name, version }) => versionMatches(version, wanted) && hasControlPlaneBinaries(join(store, name)),
    )
    .sort((a, b) => compareVersionsNewestFirst(a.version, b.version))[0];
  return found
    ? { dir: join(store, found.name), source: "setup-envtest store", version: found.version }
    : undefined;
}
