// Prebuilt control-plane binaries: the lookup order and the verified download from an envtest index,
// against a real HTTP server on 127.0.0.1 (small fake executables in the archives; the real
// kube-apiserver is unpacked in test/integration/control-plane-download.test.ts).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, type TestContext, test } from "node:test";
import {
  cacheRoot,
  findPrebuiltBinaries,
  type LocateOptions,
  resolveBinDir,
} from "../../src/cli/control-plane/index.ts";
import {
  buildEnvtestArchive,
  fakeBinary,
  indexYaml,
  sha512,
  startEnvtestServer,
  startSilentServer,
} from "../harness/envtest-server.ts";
import { eventually } from "../harness/index.ts";

const ARCHIVE = "envtest-v1.34.2-linux-amd64.tar.gz";
const ARCHIVE_PATH = `/archives/${ARCHIVE}`;

/** A fresh HOME and cache per test: the real ones stay untouched. */
function sandbox(t: TestContext, settings: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmpdir(), "kubipam-envtest-home-"));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  return { PATH: process.env.PATH, HOME: home, XDG_CACHE_HOME: join(home, "cache"), ...settings };
}

/** Linux/amd64 whatever the machine, and the messages collected. */
function locate(): LocateOptions & { messages: string[] } {
  const messages: string[] = [];
  return { platform: "linux", arch: "x64", log: (message) => messages.push(message), messages };
}

function fakeArchive(version: string): Buffer {
  return buildEnvtestArchive({
    etcd: fakeBinary(`fake etcd ${version}`),
    "kube-apiserver": fakeBinary(`fake kube-apiserver ${version}`),
    kubectl: fakeBinary(`fake kubectl ${version}`),
  });
}

/** An index listing v1.34.1, v1.34.2 (served) and v1.35.0 for linux/amd64, all with `hash` for v1.34.2. */
function indexFor(hash: string, os = "linux"): string {
  return indexYaml([
    { version: "v1.34.1", os, arch: "amd64", hash: "0".repeat(128), selfLink: "/archives/missing.tar.gz" },
    { version: "v1.34.2", os, arch: "amd64", hash, selfLink: `archives/envtest-v1.34.2-${os}-amd64.tar.gz` },
    { version: "v1.35.0", os, arch: "amd64", hash: "0".repeat(128), selfLink: "/archives/missing.tar.gz" },
  ]);
}

function run(file: string): string {
  return execFileSync(file, { encoding: "utf8" }).trim();
}

/** What the cache root holds (no version folder and no temporary folder after a failure). */
function cacheEntries(env: NodeJS.ProcessEnv): string[] {
  const root = cacheRoot(env);
  return existsSync(root) ? readdirSync(root) : [];
}

function fakeBinDir(dir: string, version: string): string {
  mkdirSync(dir, { recursive: true });
  for (const name of ["etcd", "kube-apiserver", "kubectl"]) {
    writeFileSync(join(dir, name), `#!/bin/sh\necho '${name} ${version}'\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

describe("download of prebuilt envtest binaries", () => {
  test("a verified archive is unpacked into the cache, and later runs use the cache", async (t) => {
    const archive = fakeArchive("v1.34.2");
    const server = await startEnvtestServer({
      "/index.yaml": { body: indexFor(sha512(archive)) },
      [ARCHIVE_PATH]: { body: archive },
    });
    t.after(() => server.close());
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml` });
    const progress = new PassThrough();
    let progressText = "";
    progress.on("data", (chunk: Buffer) => {
      progressText += chunk.toString();
    });

    const options = locate();
    const first = await findPrebuiltBinaries(env, { ...options, progress });
    assert.deepEqual(first, {
      dir: join(cacheRoot(env), "v1.34.2"),
      source: "envtest download",
      version: "v1.34.2",
    });
    assert.equal(run(join(first.dir, "kube-apiserver")), "fake kube-apiserver v1.34.2");
    assert.equal(run(join(first.dir, "etcd")), "fake etcd v1.34.2");
    assert.deepEqual(cacheEntries(env), ["v1.34.2"], "only the version folder, no temporary folder");
    assert.match(progressText, /100% /);
    assert.ok(
      options.messages.some((m) => m.startsWith(`downloading ${ARCHIVE}`)),
      options.messages.join("\n"),
    );

    const second = await findPrebuiltBinaries(env, locate());
    assert.deepEqual(second, { dir: first.dir, source: "kubipam cache", version: "v1.34.2" });
    assert.equal(server.requests.get("/index.yaml"), 1, "the index was read once");
    assert.equal(server.requests.get(ARCHIVE_PATH), 1, "the archive was downloaded once");
    assert.equal(server.requests.get("/archives/missing.tar.gz"), undefined);
  });

  test("resolveBinDir says that it used the download", async (t) => {
    const archive = fakeArchive("v1.34.2");
    const server = await startEnvtestServer({
      "/index.yaml": { body: indexFor(sha512(archive)) },
      [ARCHIVE_PATH]: { body: archive },
    });
    t.after(() => server.close());
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml` });
    const options = locate();
    const dir = await resolveBinDir(env, options);
    assert.equal(dir, join(cacheRoot(env), "v1.34.2"));
    assert.equal(options.messages.at(-1), `using ${dir} (envtest download, Kubernetes v1.34.2)`);
  });

  test("temporary folders of killed downloads are removed once they are an hour old", async (t) => {
    const archive = fakeArchive("v1.34.2");
    const server = await startEnvtestServer({
      "/index.yaml": { body: indexFor(sha512(archive)) },
      [ARCHIVE_PATH]: { body: archive },
    });
    t.after(() => server.close());
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml` });
    const stale = join(cacheRoot(env), ".download-v1.34.2-killed");
    const recent = join(cacheRoot(env), ".download-v1.34.2-running");
    mkdirSync(stale, { recursive: true });
    mkdirSync(recent);
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    utimesSync(stale, twoHoursAgo, twoHoursAgo);
    assert.equal((await findPrebuiltBinaries(env, locate()))?.source, "envtest download");
    assert.deepEqual(cacheEntries(env).sort(), [".download-v1.34.2-running", "v1.34.2"]);
  });

  test("an archive whose SHA-512 differs from the index is refused and nothing is kept", async (t) => {
    const archive = fakeArchive("v1.34.2");
    const listed = sha512(Buffer.from("another archive"));
    const server = await startEnvtestServer({
      "/index.yaml": { body: indexFor(listed) },
      [ARCHIVE_PATH]: { body: archive },
    });
    t.after(() => server.close());
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml` });
    const options = locate();
    assert.equal(await findPrebuiltBinaries(env, options), undefined);
    assert.equal(server.requests.get(ARCHIVE_PATH), 1);
    const message = options.messages.at(-1) ?? "";
    assert.match(message, /SHA-512 of envtest-v1\.34\.2-linux-amd64\.tar\.gz does not match/);
    assert.ok(message.includes(`expected ${listed}`), message);
    assert.ok(message.includes(`got ${sha512(archive)}`), message);
    assert.deepEqual(cacheEntries(env), []);
  });

  test("an index without an archive for this OS/arch falls back without downloading", async (t) => {
    const server = await startEnvtestServer({ "/index.yaml": { body: indexFor("a".repeat(128), "darwin") } });
    t.after(() => server.close());
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml` });
    const options = locate();
    assert.equal(await findPrebuiltBinaries(env, options), undefined);
    assert.match(options.messages.at(-1) ?? "", /lists no envtest-v1\.34\.\*-linux-amd64\.tar\.gz/);
    assert.deepEqual([...server.requests.keys()], ["/index.yaml"]);
    assert.deepEqual(cacheEntries(env), []);
  });

  test("a server that accepts but never answers is given up after the timeout", async (t) => {
    const server = await startSilentServer();
    t.after(() => server.close());
    const env = sandbox(t, {
      KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml`,
      KUBIPAM_ENVTEST_TIMEOUT: "0.2",
    });
    const options = locate();
    assert.equal(await findPrebuiltBinaries(env, options), undefined);
    assert.equal(server.connections(), 1);
    assert.match(options.messages.at(-1) ?? "", /127\.0\.0\.1:\d+ did not answer within 0\.2 s/);
  });

  test("an abort (Ctrl-C) ends a download at once with the abort's reason", async (t) => {
    const server = await startSilentServer();
    t.after(() => server.close());
    const env = sandbox(t, {
      KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml`,
      KUBIPAM_ENVTEST_TIMEOUT: "600",
    });
    const abort = new AbortController();
    const pending = findPrebuiltBinaries(env, { ...locate(), signal: abort.signal });
    await eventually(() => assert.equal(server.connections(), 1));
    abort.abort(new Error("interrupted"));
    await assert.rejects(pending, /^Error: interrupted$/);
    assert.deepEqual(cacheEntries(env), []);
  });

  test("a transfer cut off in the middle falls back and leaves nothing", async (t) => {
    const archive = fakeArchive("v1.34.2");
    const server = await startEnvtestServer({
      "/index.yaml": { body: indexFor(sha512(archive)) },
      [ARCHIVE_PATH]: { body: archive, cutAfter: Math.floor(archive.length / 2) },
    });
    t.after(() => server.close());
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml` });
    const options = locate();
    assert.equal(await findPrebuiltBinaries(env, options), undefined);
    assert.match(options.messages.at(-1) ?? "", /downloading http:\/\/127\.0\.0\.1:\d+\/archives\/.*after/);
    assert.deepEqual(cacheEntries(env), []);
  });

  test("a truncated archive that the index vouches for fails to unpack and leaves nothing", async (t) => {
    const truncated = fakeArchive("v1.34.2").subarray(0, 100);
    const server = await startEnvtestServer({
      "/index.yaml": { body: indexFor(sha512(truncated)) },
      [ARCHIVE_PATH]: { body: truncated },
    });
    t.after(() => server.close());
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml` });
    const options = locate();
    assert.equal(await findPrebuiltBinaries(env, options), undefined);
    assert.match(options.messages.at(-1) ?? "", /unpacking envtest-v1\.34\.2-linux-amd64\.tar\.gz failed/);
    assert.deepEqual(cacheEntries(env), []);
  });

  test("KUBIPAM_ENVTEST_INDEX=off downloads nothing", async (t) => {
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: "off" });
    const options = locate();
    assert.equal(await findPrebuiltBinaries(env, options), undefined);
    assert.deepEqual(options.messages, ["KUBIPAM_ENVTEST_INDEX=off: not downloading prebuilt binaries"]);
  });

  test("bad settings are named", async (t) => {
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [{ KUBIPAM_ENVTEST_INDEX: "ftp://example.invalid/index.yaml" }, /neither an http\(s\) URL nor "off"/],
      [{ KUBIPAM_ENVTEST_INDEX: "off", KUBIPAM_ENVTEST_TIMEOUT: "soon" }, /not a positive number of seconds/],
      [
        { KUBIPAM_ENVTEST_INDEX: "off", KUBIPAM_KUBERNETES_VERSION: "1.34" },
        /not a release version like v1\.34\.4/,
      ],
    ];
    for (const [settings, message] of cases) {
      await assert.rejects(findPrebuiltBinaries(sandbox(t, settings), locate()), message);
    }
  });
});

describe("binaries already on this machine", () => {
  test("setup-envtest's store is found with the newest matching patch, on Linux and macOS", async (t) => {
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: "off" });
    const home = env.HOME ?? "";
    const linuxStore = join(home, ".local", "share", "kubebuilder-envtest", "k8s");
    fakeBinDir(join(linuxStore, "1.34.1-linux-amd64"), "1.34.1");
    fakeBinDir(join(linuxStore, "1.34.3-linux-amd64"), "1.34.3");
    fakeBinDir(join(linuxStore, "1.35.0-linux-amd64"), "1.35.0");
    fakeBinDir(join(linuxStore, "1.34.9-linux-arm64"), "1.34.9");
    assert.deepEqual(await findPrebuiltBinaries(env, locate()), {
      dir: join(linuxStore, "1.34.3-linux-amd64"),
      source: "setup-envtest store",
      version: "v1.34.3",
    });

    const macStore = join(home, "Library", "Application Support", "io.kubebuilder.envtest", "k8s");
    fakeBinDir(join(macStore, "1.34.2-darwin-arm64"), "1.34.2");
    const mac = { ...locate(), platform: "darwin" as const, arch: "arm64" };
    assert.deepEqual(await findPrebuiltBinaries(env, mac), {
      dir: join(macStore, "1.34.2-darwin-arm64"),
      source: "setup-envtest store",
      version: "v1.34.2",
    });

    const pinned = { ...env, KUBIPAM_KUBERNETES_VERSION: "v1.34.1" };
    assert.equal((await findPrebuiltBinaries(pinned, locate()))?.dir, join(linuxStore, "1.34.1-linux-amd64"));
  });

  test("KUBEBUILDER_ASSETS comes first, then kubipam's cache, then setup-envtest's store", async (t) => {
    const env = sandbox(t, { KUBIPAM_ENVTEST_INDEX: "off" });
    const home = env.HOME ?? "";
    const store = fakeBinDir(
      join(home, ".local", "share", "kubebuilder-envtest", "k8s", "1.34.5-linux-amd64"),
      "s",
    );
    assert.equal((await findPrebuiltBinaries(env, locate()))?.dir, store);

    const cached = fakeBinDir(join(cacheRoot(env), "v1.34.0"), "c");
    mkdirSync(join(cacheRoot(env), "v1.34.4.partial.x1"));
    assert.deepEqual(await findPrebuiltBinaries(env, locate()), {
      dir: cached,
      source: "kubipam cache",
      version: "v1.34.0",
    });

    const assets = fakeBinDir(join(home, "assets"), "a");
    const withAssets = { ...env, KUBEBUILDER_ASSETS: assets };
    assert.deepEqual(await findPrebuiltBinaries(withAssets, locate()), {
      dir: assets,
      source: "KUBEBUILDER_ASSETS",
    });

    const empty = join(home, "empty");
    mkdirSync(empty);
    const options = locate();
    assert.equal((await findPrebuiltBinaries({ ...env, KUBEBUILDER_ASSETS: empty }, options))?.dir, cached);
    assert.match(
      options.messages[0] ?? "",
      /KUBEBUILDER_ASSETS=.*empty lacks an executable etcd or kube-apiserver/,
    );
  });
});
