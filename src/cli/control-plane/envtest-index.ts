// The envtest release index of kubernetes-sigs/controller-tools (what setup-envtest downloads from):
//
//   releases:
//     v1.34.1:
//       envtest-v1.34.1-linux-amd64.tar.gz:
//         hash: <SHA-512, hex>
//         selfLink: https://github.com/kubernetes-sigs/controller-tools/releases/download/…
//
// Each archive holds controller-tools/envtest/{etcd,kube-apiserver,kubectl}. Pure: no I/O here.

import { parse } from "yaml";

/** The official index, as controller-runtime's envtest uses it by default. */
export const DEFAULT_ENVTEST_INDEX =
  "https://raw.githubusercontent.com/kubernetes-sigs/controller-tools/HEAD/envtest-releases.yaml";

/** The Kubernetes minor the project is tested with. */
export const TESTED_KUBERNETES_MINOR = "1.34";

/** An exact version (`v1.34.4`) or any patch of a minor (`1.34`), newest first. */
export interface WantedVersion {
  exact?: string;
  minor: string;
}

export interface EnvtestArchive {
  version: string;
  /** `envtest-<version>-<os>-<arch>.tar.gz` */
  name: string;
  /** SHA-512, lower-case hex. */
  hash: string;
  url: string;
}

const RELEASE = /^v(\d+)\.(\d+)\.(\d+)$/;

/** Major, minor and patch of a release `vX.Y.Z` (pre-releases and other forms: undefined). */
export function releaseNumbers(version: string): [number, number, number] | undefined {
  const match = RELEASE.exec(version);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
}

/** Whether `version` (`vX.Y.Z`) is what `wanted` asks for. */
export function versionMatches(version: string, wanted: WantedVersion): boolean {
  const numbers = releaseNumbers(version);
  if (!numbers) return false;
  return wanted.exact ? version === wanted.exact : `${numbers[0]}.${numbers[1]}` === wanted.minor;
}

/** Newest first; versions that are not `vX.Y.Z` sort last. */
export function compareVersionsNewestFirst(a: string, b: string): number {
  const x = releaseNumbers(a) ?? [-1, -1, -1];
  const y = releaseNumbers(b) ?? [-1, -1, -1];
  return y[0] - x[0] || y[1] - x[1] || y[2] - x[2];
}

/** `KUBIPAM_KUBERNETES_VERSION` pins an exact version; unset, any patch of the tested minor will do. */
export function wantedVersion(env: NodeJS.ProcessEnv): WantedVersion {
  const pinned = env.KUBIPAM_KUBERNETES_VERSION;
  if (!pinned) return { minor: TESTED_KUBERNETES_MINOR };
  const version = pinned.startsWith("v") ? pinned : `v${pinned}`;
  const numbers = releaseNumbers(version);
  if (!numbers) {
    throw new Error(`KUBIPAM_KUBERNETES_VERSION=${pinned} is not a release version like v1.34.4`);
  }
  return { exact: version, minor: `${numbers[0]}.${numbers[1]}` };
}

/** Go's names (GOOS, GOARCH) for a Node platform and architecture: the index and setup-envtest use them. */
export function goPlatform(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): { os: string; arch: string } {
  const goArch: Record<string, string> = { x64: "amd64", ia32: "386", ppc64: "ppc64le" };
  return { os: platform === "win32" ? "windows" : platform, arch: goArch[arch] ?? arch };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The newest archive in the index that matches `wanted` for `os`/`arch`, or why there is none.
 * `selfLink`s may be relative to the index (a mirror serving both from one folder).
 */
export function pickArchive(
  indexText: string,
  indexUrl: string,
  wanted: WantedVersion,
  os: string,
  arch: string,
): EnvtestArchive | { missing: string } {
  let document: unknown;
  try {
    document = parse(indexText);
  } catch (error) {
    throw new Error(`the envtest index ${indexUrl} is not YAML: ${(error as Error).message}`);
  }
  const releases = isRecord(document) ? document.releases : undefined;
  if (!isRecord(releases)) throw new Error(`the envtest index ${indexUrl} has no "releases" map`);
  const versions = Object.keys(releases)
    .filter((version) => versionMatches(version, wanted))
    .sort(compareVersionsNewestFirst);
  for (const version of versions) {
    const archives = releases[version];
    const name = `envtest-${version}-${os}-${arch}.tar.gz`;
    const entry = isRecord(archives) ? archives[name] : undefined;
    if (entry === undefined) continue;
    const hash = isRecord(entry) ? entry.hash : undefined;
    const selfLink = isRecord(entry) ? entry.selfLink : undefined;
    if (typeof hash !== "string" || !/^[0-9a-fA-F]{128}$/.test(hash) || typeof selfLink !== "string") {
      throw new Error(`the envtest index ${indexUrl} has no SHA-512 hash and selfLink for ${name}`);
    }
    let url: URL;
    try {
      url = new URL(selfLink, indexUrl);
    } catch {
      throw new Error(`the envtest index ${indexUrl} has a bad selfLink for ${name}: ${selfLink}`);
    }
    return { version, name, hash: hash.toLowerCase(), url: url.href };
  }
  const what = wanted.exact ?? `v${wanted.minor}.*`;
  const listed = versions.length > 0 ? ` (it lists ${versions.join(", ")} for other platforms)` : "";
  return { missing: `the envtest index lists no envtest-${what}-${os}-${arch}.tar.gz${listed}` };
}
