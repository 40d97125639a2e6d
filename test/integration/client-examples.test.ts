// The typed examples of docs/client.md and the README, run against the real API server with the IPAM
// controller in this process.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { quickStart } from "../../examples/quick-start.ts";
import { runTenantOperator, type Tenant, tenantCrd, tenantResource } from "../../examples/tenant-operator.ts";
import type { IPAMRequest } from "../../src/api/types.ts";
import { ipamRequestResource } from "../../src/api/types.ts";
import { getRange, KubeClient } from "../../src/client/index.ts";
import { isNotFound } from "../../src/runtime/kube.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let cluster: TestCluster;
let controller: RunningController;
let f: IpamFixture;
let client: KubeClient;
let ns: string;

before(async () => {
  cluster = await useCluster();
  ns = await cluster.createNamespace("client-examples");
  f = ipamFixture(cluster, ns);
  client = new KubeClient(cluster.kubeConfig);
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  client?.close();
  f?.client.close();
});

describe("examples/quick-start.ts", () => {
  it("gets a /24 with the kubeconfig chain", async () => {
    await f.range("pods", { ranges: ["10.70.0.0/16"] });
    await f.rangeSettled("pods", (r) => r.status?.state === "Ready");
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = cluster.kubeconfigPath;
    try {
      assert.equal(await quickStart(ns), "10.70.0.0/24");
      assert.equal(await quickStart(ns), "10.70.0.0/24", "a second run adopts the same request");
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });
});

describe("examples/tenant-operator.ts", () => {
  const stop = new AbortController();
  const errors: string[] = [];
  let operator: Promise<void>;

  before(async () => {
    await cluster.installCrds(tenantCrd);
    await f.range("tenants", { ranges: ["10.60.0.0/26"] }); // room for four /28s
    await f.rangeSettled("tenants", (r) => r.status?.state === "Ready");
    operator = runTenantOperator({
      client,
      namespace: ns,
      range: { name: "tenants" },
      signal: stop.signal,
      waitMs: 2000,
      onError: (key, err) => errors.push(`${key}: ${String(err)}`),
    });
  });

  after(async () => {
    stop.abort();
    await operator;
  });

  const createTenant = (name: string) =>
    client.create<Tenant>(tenantResource, {
      apiVersion: "example.kubipam.dev/v1",
      kind: "Tenant",
      metadata: { name, namespace: ns },
      spec: {},
    });
  const getTenant = async (name: string) => {
    try {
      return await client.get<Tenant>(tenantResource, name, { namespace: ns });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const tenantWith = (name: string, done: (t: Tenant) => boolean) =>
    eventually(
      async () => {
        const t = await getTenant(name);
        assert.ok(t && done(t), `tenant ${name}: ${JSON.stringify(t?.status)}`);
        return t;
      },
      { timeoutMs: 30_000 },
    );

  it("gives each tenant its own /28, owned by the tenant", async () => {
    const names = ["t1", "t2", "t3", "t4"];
    for (const n of names) await createTenant(n);
    const cidrs: string[] = [];
    for (const n of names)
      cidrs.push((await tenantWith(n, (t) => Boolean(t.status?.cidr))).status?.cidr ?? "");
    assert.deepEqual(
      [...cidrs].sort(),
      ["10.60.0.0/28", "10.60.0.16/28", "10.60.0.32/28", "10.60.0.48/28"],
      "four distinct /28s fill the range",
    );
    const t2 = await getTenant("t2");
    const request = await client.get<IPAMRequest & { metadata: { ownerReferences?: { uid: string }[] } }>(
      ipamRequestResource,
      "tenant-t2",
      { namespace: ns },
    );
    assert.deepEqual(
      request.metadata.ownerReferences?.map((r) => r.uid),
      [t2?.metadata.uid],
    );
    assert.equal(request.status?.cidr, t2?.status?.cidr);
    assert.deepEqual(t2?.metadata.finalizers, ["example.kubipam.dev/address"]);
  });

  it("makes a fifth tenant wait, and serves it when a deleted tenant released its block", async () => {
    await createTenant("t5");
    const waiting = await tenantWith("t5", (t) => /size 28 failed/.test(t.status?.message ?? ""));
    assert.match(waiting?.status?.message ?? "", /^waiting for space: allocation with size 28 failed/);
    assert.equal(waiting?.status?.cidr, undefined);
    const freed = (await getTenant("t1"))?.status?.cidr;
    await client.delete(tenantResource, "t1", { namespace: ns });
    await eventually(async () => assert.equal(await getTenant("t1"), undefined), { timeoutMs: 30_000 });
    assert.equal(await f.getRequest("tenant-t1"), undefined, "the request is gone before the tenant");
    const served = await tenantWith("t5", (t) => Boolean(t.status?.cidr));
    assert.equal(served?.status?.cidr, freed);
    const usage = await getRange({ client, namespace: ns, name: "tenants" });
    assert.equal(usage?.usage?.size, 64n);
    assert.deepEqual(errors, []);
  });
});
