// "Never twice" for Cluster API claims: controller processes without leader election serve claims and
// requests on one pool at once; the fence holder is paused past its lease with claims in flight and
// resumed. No claim's address may overlap another claim's or a request's block (invariant checker).

import assert from "node:assert/strict";
import { before, describe, it, type TestContext } from "node:test";
import {
  CAPI_IPAM_API_VERSION,
  type IPAddress,
  type IPAddressClaim,
  ipAddressClaimResource,
  ipAddressResource,
} from "../../src/api/cluster-api.ts";
import {
  API_VERSION,
  GROUP,
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRequest,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../../src/api/types.ts";
import type { KubeClient } from "../../src/runtime/kube.ts";
import { isClaimRecord } from "../../src/testing/claim-invariants.ts";
import { type ControllerProcess, controllerPool } from "../../src/testing/controller-process.ts";
import { checkInvariants } from "../../src/testing/invariants.ts";
import { readyCondition } from "../harness/claims.ts";
import { eventually, installClusterApiCrds, type TestCluster, useCluster } from "../harness/index.ts";
import { ipamFixture } from "../harness/ipam.ts";
import { killHolder, pauseHolder } from "./writers.ts";

let cluster: TestCluster;
const pool = controllerPool();

before(async () => {
  cluster = await useCluster();
  await installClusterApiCrds(cluster);
});

function start(t: TestContext, identity: string): ControllerProcess {
  return pool.start(cluster.kubeconfigPath, identity, { test: t });
}

/** Creates `count` objects from 8 threads — every third a request of size 28-30, the rest claims. */
async function createMixed(
  client: KubeClient,
  namespace: string,
  count: number,
  during?: () => Promise<void>,
): Promise<void> {
  let next = 0;
  let fired: Promise<void> | undefined;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      if (i === Math.floor(count / 3) && during) fired = during();
      if (i % 3 === 0) {
        await client.create<IPAMRequest>(ipamRequestResource, {
          apiVersion: API_VERSION,
          kind: "IPAMRequest",
          metadata: { name: `req-${i}`, namespace },
          spec: { ipam: { name: "pool" }, size: 28 + ((i / 3) % 3) },
        });
      } else {
        await client.create<IPAddressClaim>(ipAddressClaimResource, {
          apiVersion: CAPI_IPAM_API_VERSION,
          kind: "IPAddressClaim",
          metadata: { name: `claim-${i}`, namespace },
          spec: { poolRef: { apiGroup: GROUP, kind: "IPAMRange", name: "pool" } },
        });
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await fired;
}

/**
 * All claims served, the checker clean, and the pool's usage exact: 60 claims of one address and 30
 * requests, 10 each of /28, /29 and /30 (the checker compares records with status; this counts).
 */
async function settledWithoutProblems(client: KubeClient, namespace: string, claims: number): Promise<void> {
  await eventually(
    async () => {
      const range = await client.get<IPAMRange>(ipamRangeResource, "pool", { namespace });
      assert.equal(range.status?.allocated, String(claims + 10 * 16 + 10 * 8 + 10 * 4));
      const problems = await checkInvariants(client, { namespaces: [namespace], allReady: true });
      const list = await client.listAll<IPAddressClaim>(ipAddressClaimResource, { namespace });
      assert.equal(list.items.length, claims);
      const waiting = list.items.filter((c) => readyCondition(c)?.status !== "True");
      assert.deepEqual(
        waiting.map((c) => c.metadata.name),
        [],
      );
      assert.deepEqual(problems, []);
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

/** Strips every finalizer off an object, as a user with `kubectl edit` could (merge patch). */
async function stripFinalizers(
  client: KubeClient,
  type: typeof ipamAllocationResource | typeof ipAddressResource,
  namespace: string,
  name: string,
): Promise<void> {
  await client.patch(type, name, { metadata: { finalizers: null } }, { namespace });
}

/**
 * A user at work with kubectl while claims are served: once `atLeast` claim records exist, deletes
 * every third claim's record and IPAddress, and strips the finalizers of half of those (so they are
 * really gone, not just marked for deletion). Returns how many records and IPAddresses it deleted.
 */
async function userDeletesClaimObjects(
  client: KubeClient,
  namespace: string,
  atLeast: number,
): Promise<{ records: number; addresses: number }> {
  const records = await eventually(
    async () => {
      const list = await client.listAll<IPAMAllocation>(ipamAllocationResource, { namespace });
      const mine = list.items.filter(isClaimRecord);
      assert.ok(mine.length >= atLeast, `${mine.length} claim records`);
      return mine;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const addresses = (await client.listAll<IPAddress>(ipAddressResource, { namespace })).items;
  const victims = [
    ...records
      .filter((_, i) => i % 3 === 0)
      .map((r) => ({ type: ipamAllocationResource, name: r.metadata.name })),
    ...addresses
      .filter((_, i) => i % 3 === 1)
      .map((a) => ({ type: ipAddressResource, name: a.metadata.name })),
  ];
  await Promise.all(
    victims.map(async ({ type, name }, i) => {
      await client.delete(type, name ?? "", { namespace });
      if (i % 2 === 0) await stripFinalizers(client, type, namespace, name ?? "");
    }),
  );
  return {
    records: victims.filter((v) => v.type === ipamAllocationResource).length,
    addresses: victims.filter((v) => v.type === ipAddressResource).length,
  };
}

describe("claims and requests, concurrent writers", () => {
  it("2 controllers without leader election: 60 claims and 30 requests on one pool, no overlap", async (t) => {
    const ns = await cluster.createNamespace("claims-2");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.73.0.0/23"] });
    const group = [start(t, "c2-0"), start(t, "c2-1")];
    await createMixed(f.client, ns, 90);
    await settledWithoutProblems(f.client, ns, 60);
    await Promise.all(group.map((p) => p.kill("SIGTERM")));
    f.client.close();
  });

  it("the fence holder is paused past its lease with claims in flight: nothing stale is published", async (t) => {
    const ns = await cluster.createNamespace("claims-pause");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.74.0.0/23"] });
    const group = [start(t, "cp-0"), start(t, "cp-1")];
    let paused: ControllerProcess | undefined;
    await createMixed(f.client, ns, 90, async () => {
      paused = await pauseHolder(f.client, group);
    });
    await eventually(
      async () => {
        const list = await f.client.listAll<IPAddressClaim>(ipAddressClaimResource, { namespace: ns });
        const ready = list.items.filter((c) => readyCondition(c)?.status === "True").length;
        assert.ok(ready >= 40, `${ready} of ${list.items.length} claims Ready while the old holder sleeps`);
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    paused?.child.kill("SIGCONT");
    assert.ok(paused, "a holder was paused");
    await settledWithoutProblems(f.client, ns, 60);
    await Promise.all(group.map((p) => p.kill("SIGTERM")));
    f.client.close();
  });
  it("the fence holder is killed (-9) with claims in flight: the others serve every claim once", async (t) => {
    const ns = await cluster.createNamespace("claims-kill");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.75.0.0/23"] });
    const group = [start(t, "ck-0"), start(t, "ck-1"), start(t, "ck-2")];
    let killed: ControllerProcess | undefined;
    await createMixed(f.client, ns, 90, async () => {
      killed = await killHolder(f.client, group);
    });
    assert.ok(killed, "a holder was killed");
    await settledWithoutProblems(f.client, ns, 60);
    await Promise.all(group.map((p) => p.kill("SIGTERM")));
    f.client.close();
  });

  it("a user deletes claims' records and IPAddresses (finalizers stripped too) mid-churn: put back, never twice", async (t) => {
    const ns = await cluster.createNamespace("claims-user");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.76.0.0/23"] });
    const group = [start(t, "cu-0"), start(t, "cu-1")];
    let deleted = { records: 0, addresses: 0 };
    await createMixed(f.client, ns, 90, async () => {
      deleted = await userDeletesClaimObjects(f.client, ns, 12);
    });
    assert.ok(deleted.records >= 4 && deleted.addresses >= 1, JSON.stringify(deleted));
    await settledWithoutProblems(f.client, ns, 60);
    await Promise.all(group.map((p) => p.kill("SIGTERM")));
    f.client.close();
  });
});
