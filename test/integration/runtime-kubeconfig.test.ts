// kubipam's own kubeconfig reader against files written by the real `kubectl config` (token, token
// file, client certificate, insecure, in-cluster), client-node for the rest, and a controller-style
// client that talks to the real API server with it.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import type https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { LightKubeConfig } from "../../src/runtime/kube/cluster-access.ts";
import { CoreTypes, KubeClient, loadKubeConfig } from "../../src/runtime/kube.ts";
import { resolveTestBinDir, type TestCluster, useCluster } from "../harness/index.ts";

let kubectl: string;
let dir: string;
let cluster: TestCluster;

before(async () => {
  kubectl = join(await resolveTestBinDir(), "kubectl");
  dir = mkdtempSync(join(tmpdir(), "kubipam-kubeconfig-"));
  cluster = await useCluster();
});

/** A kubeconfig written by `kubectl config <args…>` commands, one per entry. */
function written(name: string, commands: string[][]): string {
  const file = join(dir, name);
  for (const args of commands) execFileSync(kubectl, ["config", ...args, `--kubeconfig=${file}`]);
  return file;
}

async function httpsOptions(file: string): Promise<https.RequestOptions> {
  const access = LightKubeConfig.load(file);
  assert.ok(access, "read by kubipam itself");
  const opts: https.RequestOptions = {};
  await access.applyToHTTPSOptions(opts);
  return opts;
}

describe("kubipam's kubeconfig reader", () => {
  it("a token user, an embedded CA and a context namespace", async () => {
    const ca = join(dir, "ca.crt");
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    const file = written("token", [
      [
        "set-cluster",
        "c",
        "--server=https://127.0.0.1:6443",
        `--certificate-authority=${ca}`,
        "--embed-certs=true",
      ],
      ["set-credentials", "u", "--token=secret-token"],
      ["set-context", "x", "--cluster=c", "--user=u", "--namespace=team-a"],
      ["use-context", "x"],
    ]);
    const access = LightKubeConfig.load(file);
    assert.equal(access?.getCurrentCluster().server, "https://127.0.0.1:6443");
    assert.equal(access?.getContextObject(access.getCurrentContext())?.namespace, "team-a");
    const opts = await httpsOptions(file);
    assert.deepEqual(opts.ca, readFileSync(ca));
    assert.deepEqual(opts.headers, { Authorization: "Bearer secret-token" });
  });

  it("a client certificate (files), a token file (read each time), insecure-skip-tls-verify", async () => {
    const cert = join(dir, "client.crt");
    const key = join(dir, "client.key");
    const token = join(dir, "token");
    writeFileSync(cert, "CERT");
    writeFileSync(key, "KEY");
    writeFileSync(token, "first\n");
    const file = written("cert", [
      ["set-cluster", "c", "--server=https://127.0.0.1:6443", "--insecure-skip-tls-verify=true"],
      ["set-credentials", "u", `--client-certificate=${cert}`, `--client-key=${key}`],
      ["set", "users.u.tokenFile", token],
      ["set-context", "x", "--cluster=c", "--user=u"],
      ["use-context", "x"],
    ]);
    const first = await httpsOptions(file);
    assert.equal(String(first.cert), "CERT");
    assert.equal(String(first.key), "KEY");
    assert.equal(first.rejectUnauthorized, false);
    assert.deepEqual(first.headers, { Authorization: "Bearer first" });
    writeFileSync(token, "rotated\n");
    assert.deepEqual((await httpsOptions(file)).headers, { Authorization: "Bearer rotated" });
  });

  it("in-cluster: the service account's token, CA and namespace", async () => {
    const sa = mkdtempSync(join(dir, "sa-"));
    writeFileSync(join(sa, "token"), "sa-token");
    writeFileSync(join(sa, "ca.crt"), "CA");
    writeFileSync(join(sa, "namespace"), "kubipam-system");
    const env = { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443", HOME: dir };
    const access = LightKubeConfig.load(undefined, undefined, env, sa);
    assert.equal(access?.getCurrentCluster().server, "https://10.0.0.1:443");
    assert.equal(access?.getContextObject(access.getCurrentContext())?.namespace, "kubipam-system");
    const opts: https.RequestOptions = {};
    await access?.applyToHTTPSOptions(opts);
    assert.equal(String(opts.ca), "CA");
    assert.deepEqual(opts.headers, { Authorization: "Bearer sa-token" });
  });

  it("exec credential plugins and merged files are left to client-node", async () => {
    const file = written("exec", [
      ["set-cluster", "c", "--server=https://127.0.0.1:6443"],
      [
        "set-credentials",
        "u",
        "--exec-command=kubipam-no-such-plugin",
        "--exec-api-version=client.authentication.k8s.io/v1",
      ],
      ["set-context", "x", "--cluster=c", "--user=u"],
      ["use-context", "x"],
    ]);
    assert.equal(LightKubeConfig.load(file), undefined);
    const loaded = await loadKubeConfig(file);
    assert.ok(!(loaded instanceof LightKubeConfig), "client-node's KubeConfig");
    assert.equal(loaded.getCurrentCluster()?.server, "https://127.0.0.1:6443");
    assert.equal(LightKubeConfig.load(undefined, undefined, { KUBECONFIG: `${file}:${file}` }), undefined);
  });

  it("talks to the real API server with a token kubeconfig (a ServiceAccount's)", async () => {
    const ns = await cluster.createNamespace("kubeconfig");
    const path = await cluster.serviceAccountKubeconfig(ns, "reader", []);
    const access = await loadKubeConfig(path);
    assert.ok(access instanceof LightKubeConfig, "no client-node for a token kubeconfig");
    const client = new KubeClient(access);
    try {
      // Not permitted to list namespaces: an authenticated 403 proves the token was sent.
      await assert.rejects(
        client.list(CoreTypes.namespace),
        (err: { status?: number }) => err.status === 403,
      );
    } finally {
      client.close();
    }
  });
});
