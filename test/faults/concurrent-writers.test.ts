// "Never twice" with several writers at once: controller processes without leader election, requests of
// mixed sizes created from many threads, the fence holder killed (-9) or paused past its lease. Only
// the API server may keep them apart (the allocation fence), never timing.

import assert from "node:assert/strict";
import { before, describe, it, type TestContext } from "node:test";
import { API_VERSION, type IPAMRequest, ipamRequestResource } from "../../src/api/types.ts";
import type { KubeClient } from "../../src/runtime/kube.ts";
import { type ControllerProcess, controllerPool } from "../../src/testing/controller-process.ts";
import { checkInvariants } from "../../src/testing/invariants.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";
import { ipamFixture } from "../harness/ipam.ts";
import { killHolder, pauseHolder } from "./writers.ts";

let cluster: TestCluster;
const pool = controllerPool();

before(async () => {
  cluster = await useCluster();
});

/** A controller process, SIGKILLed when the test ends (passed or not), so it serves no later test. */
function start(t: TestContext, identity: string): ControllerProcess {
  return pool.start(cluster.kubeconfigPath, identity, { test: t });
}

const SIZES = [26, 28, 30, 32];

/** Creates `count` requests of mixed sizes from 8 threads; `during` runs once `count / 3` exist. */
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
      await client.create<IPAMRequest>(ipamRequestResource, {
        apiVersion: API_VERSION,
        kind: "IPAMRequest",
        metadata: { name: `req-${i}`, namespace },
        spec: { ipam: { name: "pool" }, size: SIZES[i % SIZES.length] },
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await fired;
}

async function settledWithoutProblems(client: KubeClient, namespace: string, count: number): Promise<void> {
  await eventually(
    async () => {
      const problems = await checkInvariants(client, { namespaces: [namespace], allReady: true });
      const list = await client.listAll<IPAMRequest>(ipamRequestResource, { namespace });
      assert.equal(list.items.length, count);
      assert.deepEqual(problems, []);
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

describe("concurrent writers, mixed sizes", () => {
  for (const writers of [2, 3]) {
    it(`${writers} controllers without leader election: 60 requests of sizes 26-32, no overlap`, async (t) => {
      const ns = await cluster.createNamespace(`writers-${writers}`);
      const f = ipamFixture(cluster, ns);
      await f.range("pool", { ranges: ["10.70.0.0/20"] });
      const group = Array.from({ length: writers }, (_, i) => start(t, `w${writers}-${i}`));
      await createMixed(f.client, ns, 60);
      await settledWithoutProblems(f.client, ns, 60);
      await Promise.all(group.map((p) => p.kill("SIGTERM")));
      f.client.close();
    });
  }

  it("the fence holder is killed (-9) in the middle: the others take over, no overlap, no leak", async (t) => {
    const ns = await cluster.createNamespace("writers-kill");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.71.0.0/20"] });
    const group = [start(t, "k-0"), start(t, "k-1"), start(t, "k-2")];
    await createMixed(f.client, ns, 90, async () => {
      await killHolder(f.client, group);
    });
    await settledWithoutProblems(f.client, ns, 90);
    await Promise.all(group.map((p) => p.kill("SIGTERM")));
    f.client.close();
  });

  it("the fence holder is paused past its lease and resumed: it publishes nothing stale", async (t) => {
    const ns = await cluster.createNamespace("writers-pause");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.72.0.0/20"] });
    const group = [start(t, "p-0"), start(t, "p-1")];
    let paused: ControllerProcess | undefined;
    await createMixed(f.client, ns, 90, async () => {
      // Someone else holds the fence (and allocates) while the old holder sleeps with claims in flight.
      paused = await pauseHolder(f.client, group);
    });
    // Let the new holder publish a while, then wake the old one up in the middle of the churn.
    await eventually(
      async () => {
        const list = await f.client.listAll<IPAMRequest>(ipamRequestResource, { namespace: ns });
        assert.ok(list.items.filter((r) => r.status?.state === "Ready").length >= 60);
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    paused?.child.kill("SIGCONT");
    assert.ok(paused, "a holder was paused");
    await settledWithoutProblems(f.client, ns, 90);
    await Promise.all(group.map((p) => p.kill("SIGTERM")));
    f.client.close();
  });
});
