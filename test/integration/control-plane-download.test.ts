// The download of prebuilt control-plane binaries with real ones: an envtest archive built from the
// run's etcd and kube-apiserver, served on 127.0.0.1, verified, unpacked into a temporary cache, and
// the unpacked kube-apiserver and etcd run from there. (kubectl stays a small fake: 60 MB less to pack.)

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { cacheRoot, findPrebuiltBinaries, goPlatform } from "../../src/cli/control-plane/index.ts";
import {
  buildEnvtestArchive,
  fakeBinary,
  indexYaml,
  sha512,
  startEnvtestServer,
} from "../harness/envtest-server.ts";
import { resolveTestBinDir } from "../harness/index.ts";

test("a downloaded archive of the real binaries is verified, unpacked and runs from the cache", async (t) => {
  const binDir = process.env.KUBIPAM_BIN_DIR || (await resolveTestBinDir());
  const archive = buildEnvtestArchive({
    etcd: { file: join(binDir, "etcd") },
    "kube-apiserver": { file: join(binDir, "kube-apiserver") },
    kubectl: fakeBinary("kubectl is not part of this test"),
  });
  const { os, arch } = goPlatform();
  const name = `envtest-v1.34.99-${os}-${arch}.tar.gz`;
  const server = await startEnvtestServer({
    "/index.yaml": {
      body: indexYaml([{ version: "v1.34.99", os, arch, hash: sha512(archive), selfLink: name }]),
    },
    [`/${name}`]: { body: archive },
  });
  t.after(() => server.close());
  const home = mkdtempSync(join(tmpdir(), "kubipam-envtest-home-"));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CACHE_HOME: join(home, "cache"),
    KUBIPAM_ENVTEST_INDEX: `${server.url}/index.yaml`,
  };

  const found = await findPrebuiltBinaries(env, { log: () => {} });
  assert.deepEqual(found, {
    dir: join(cacheRoot(env), "v1.34.99"),
    source: "envtest download",
    version: "v1.34.99",
  });
  const apiserverVersion = execFileSync(join(found.dir, "kube-apiserver"), ["--version"], {
    encoding: "utf8",
  });
  assert.match(apiserverVersion, /^Kubernetes v\d+\.\d+\.\d+/);
  const etcdVersion = execFileSync(join(found.dir, "etcd"), ["--version"], { encoding: "utf8" });
  assert.match(etcdVersion, /etcd Version: \d+\.\d+\.\d+/);
  assert.equal(server.requests.get(`/${name}`), 1);
});
