// Download of a prebuilt envtest archive (see envtest-index.ts) into kubipam's cache.
//
// The archive is streamed into a temporary folder inside the cache root while its SHA-512 is
// computed; only a verified archive is unpacked (by the system's tar, present on Linux and macOS), and
// only a complete set of binaries is renamed into place — one rename on one file system, so an
// interrupted run never leaves a half-made version folder. Every failure removes the temporary folder.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { promisify } from "node:util";
import { type EnvtestArchive, pickArchive, type WantedVersion } from "./envtest-index.ts";
import { type FoundBinaries, hasControlPlaneBinaries } from "./local-binaries.ts";

const execFileAsync = promisify(execFile);

/** Once the archive flows, how long it may stall before the download is given up. */
const STALL_MS = 30_000;
/** Temporary download folders older than this are left-overs of killed runs. */
const STALE_MS = 3_600_000;
const TEMP_PREFIX = ".download-";

export interface DownloadOptions {
  indexUrl: string;
  wanted: WantedVersion;
  /** Go's names for this machine (`linux`, `amd64`). */
  os: string;
  arch: string;
  /** The cache root; the version lands in `<cacheRoot>/<version>`. */
  cacheRoot: string;
  /** How long to wait for a server to answer (connect plus response headers). */
  timeoutMs: number;
  log: (message: string) => void;
  /** Where a live progress line goes (a terminal); without it, only start and end are logged. */
  progress?: NodeJS.WritableStream;
  /** Aborts the download (Ctrl-C); the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export class DownloadError extends Error {}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) return `${error.message} (${cause.message})`;
  return error.message;
}

/**
 * GET `url`; the answer's headers must arrive within `timeoutMs`. The returned controller aborts
 * the body (with a reason) when the caller's signal fires.
 */
async function get(
  url: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ response: Response; controller: AbortController; done: () => void }> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const done = (): void => signal?.removeEventListener("abort", onAbort);
  const host = new URL(url).host;
  const timer = setTimeout(
    () => controller.abort(new DownloadError(`${host} did not answer within ${timeoutMs / 1000} s`)),
    timeoutMs,
  );
  try {
    // identity: the bytes as published (fetch would silently unpack a server-side gzip encoding).
    const response = await fetch(url, {
      signal: controller.signal,
      redirect: "follow",
      headers: { "accept-encoding": "identity" },
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new DownloadError(`GET ${url}: HTTP ${response.status} ${response.statusText}`);
    }
    return { response, controller, done };
  } catch (error) {
    done();
    if (controller.signal.aborted) throw controller.signal.reason;
    if (error instanceof DownloadError) throw error;
    throw new DownloadError(`GET ${url}: ${describe(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the index within the timeout and names the archive to fetch (or why there is none). */
async function readIndex(options: DownloadOptions): Promise<EnvtestArchive> {
  const { response, controller, done } = await get(options.indexUrl, options.timeoutMs, options.signal);
  const timer = setTimeout(
    () =>
      controller.abort(new DownloadError(`the index did not arrive within ${options.timeoutMs / 1000} s`)),
    options.timeoutMs,
  );
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    if (controller.signal.aborted) throw controller.signal.reason;
    throw new DownloadError(`reading ${options.indexUrl}: ${describe(error)}`);
  } finally {
    clearTimeout(timer);
    done();
  }
  const picked = pickArchive(text, options.indexUrl, options.wanted, options.os, options.arch);
  if ("missing" in picked) throw new DownloadError(picked.missing);
  return picked;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}

/** Streams the archive to `file`, returning its SHA-512 (hex). */
async function fetchArchive(
  archive: EnvtestArchive,
  file: string,
  options: DownloadOptions,
): Promise<string> {
  const { response, controller, done } = await get(archive.url, options.timeoutMs, options.signal);
  const total = Number(response.headers.get("content-length")) || undefined;
  const host = new URL(response.url || archive.url).host;
  options.log(`downloading ${archive.name}${total ? ` (${megabytes(total)})` : ""} from ${host}`);
  const hash = createHash("sha512");
  const started = Date.now();
  let received = 0;
  let lastShown = 0;
  let stall: NodeJS.Timeout | undefined;
  const watchStall = (): void => {
    clearTimeout(stall);
    stall = setTimeout(
      () => controller.abort(new DownloadError(`the download stalled for ${STALL_MS / 1000} s`)),
      STALL_MS,
    );
  };
  const show = (final: boolean): void => {
    if (!options.progress || (!final && Date.now() - lastShown < 250)) return;
    lastShown = Date.now();
    const percent = total ? ` ${Math.floor((received / total) * 100)}%` : "";
    options.progress.write(`\r  ${archive.name}:${percent} ${megabytes(received)}${final ? "\n" : ""}`);
  };
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      received += chunk.length;
      watchStall();
      show(false);
      callback(null, chunk);
    },
  });
  watchStall();
  try {
    if (!response.body) throw new DownloadError(`GET ${archive.url}: empty answer`);
    const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    await pipeline(body, meter, createWriteStream(file));
  } catch (error) {
    if (controller.signal.aborted) throw controller.signal.reason;
    throw new DownloadError(`downloading ${archive.url}: ${describe(error)} after ${megabytes(received)}`);
  } finally {
    clearTimeout(stall);
    done();
    show(true);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  options.log(`downloaded ${megabytes(received)} in ${seconds} s`);
  return hash.digest("hex");
}

/** Removes temporary folders of runs that were killed before they could clean up. */
async function removeStaleDownloads(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [])) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const path = join(root, name);
    const info = await stat(path).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_MS) await rm(path, { recursive: true, force: true });
  }
}

/**
 * Fetches the index, downloads the newest matching archive, verifies it and unpacks it into the
 * cache. Throws `DownloadError` (nothing kept) when any step fails, or the signal's reason on abort.
 */
export async function downloadEnvtest(options: DownloadOptions): Promise<FoundBinaries> {
  options.signal?.throwIfAborted();
  const archive = await readIndex(options);
  const target = join(options.cacheRoot, archive.version);
  await mkdir(options.cacheRoot, { recursive: true });
  await removeStaleDownloads(options.cacheRoot);
  const work = await mkdtemp(join(options.cacheRoot, `${TEMP_PREFIX}${archive.version}-`));
  try {
    const file = join(work, archive.name);
    const actual = await fetchArchive(archive, file, options);
    if (actual !== archive.hash) {
      throw new DownloadError(
        `SHA-512 of ${archive.name} does not match the index, so it was discarded: expected ${archive.hash}, got ${actual}`,
      );
    }
    const unpacked = join(work, "unpacked");
    await mkdir(unpacked);
    try {
      // Files owned by whoever unpacks them, also when that is root (GNU tar and bsdtar alike).
      await execFileAsync("tar", ["--no-same-owner", "-xzf", file, "-C", unpacked], {
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      const stderr = (error as { stderr?: unknown }).stderr;
      throw new DownloadError(
        `unpacking ${archive.name} failed: ${String(stderr || describe(error)).trim()}`,
      );
    }
    const binaries = join(unpacked, "controller-tools", "envtest");
    if (!hasControlPlaneBinaries(binaries, true)) {
      throw new DownloadError(
        `${archive.name} lacks controller-tools/envtest/{etcd,kube-apiserver,kubectl} as executables`,
      );
    }
    chmodSync(binaries, 0o755);
    try {
      await rename(binaries, target);
    } catch (error) {
      // Another run put the same version in place first: use it.
      if (!hasControlPlaneBinaries(target, true)) throw error;
    }
    return { dir: target, source: "envtest download", version: archive.version };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
