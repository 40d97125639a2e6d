// "Never twice" for Cluster API claims: controller processes without leader election serve claims and
// requests on one pool at once; the fence holder is paused past its lease with claims in flight and
// resumed. No claim's address may overlap another claim's or a request's block (invariant checker).

import assert from "node:assert/strict";
import { before, describe, it, type TestContext } from "node:test";
import {
  CAPI_IPAM_API_VERSION,
  type IPAddressClaim,
  ipAddressClaimResource,
} from "../../src/api/cluster-api.ts";
import { API_VERSION, GROUP, type IPAMRequest, ipamRequestResource } from "../../src/api/types.ts";
import { DEFAULT_FENCE_NAME } from "../../src/controllers/setup.ts";
import { CoreTypes, type KubeClient } from "../../src/runtime/kube.ts";
import type { Lease } from "../../src/runtime/leader-election.ts";
import { type ControllerProcess, controllerPool } from "../../src/testing/controller-process.ts";
import { checkInvariants } from "../../src/testing/invariants.ts";
import { readyCondition } from "../harness/claims.ts";
import { eventually, installClusterApiCrds, type TestCluster, useCluster } from "../harness/index.ts";
import { ipamFixture } from "../harness/ipam.ts";

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

async function settledWithoutProblems(client: KubeClient, namespace: string, claims: number): Promise<void> {
  await eventually(
    async () => {
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

async function holderOf(client: KubeClient, candidates: ControllerProcess[]): Promise<ControllerProcess> {
  return eventually(
    async () => {
      const lease = await client.get<Lease>(CoreTypes.lease, DEFAULT_FENCE_NAME, {
        namespace: "kube-system",
      });
      const holder = lease.spec?.holderIdentity ?? "";
      const p = candidates.find((c) => holder.startsWith(`${c.identity}_`));
      assert.ok(p, `fence held by ${holder || "nobody"}`);
      return p;
    },
    { timeoutMs: 30_000 },
  );
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
      paused = await holderOf(f.client, group);
      paused.child.kill("SIGSTOP");
      await holderOf(
        f.client,
        group.filter((p) => p !== paused),
      );
    });
    await eventually(
      async () => {
        const list = await f.client.listAll<IPAddressClaim>(ipAddressClaimResource, { namespace: ns });
        assert.ok(list.items.filter((c) => readyCondition(c)?.status === "True").length >= 40);
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    paused?.child.kill("SIGCONT");
    assert.ok(paused, "a holder was paused");
    await settledWithoutProblems(f.client, ns, 60);
    await Promise.all(group.map((p) => p.kill("SIGTERM")));
    f.client.close();
  });
});
