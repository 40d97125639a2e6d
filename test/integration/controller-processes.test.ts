// Crash, concurrency and failover with the controller as separate processes.

import assert from "node:assert/strict";
import { before, describe, it, type TestContext } from "node:test";
import { API_VERSION, type IPAMRequest, ipamRequestResource } from "../../src/api/types.ts";
import type { KubeClient } from "../../src/runtime/kube.ts";
import { type ControllerProcess, controllerPool } from "../../src/testing/controller-process.ts";
import { eventually, invariantsHold, type TestCluster, useCluster } from "../harness/index.ts";
import { type IpamFixture, ipamFixture } from "../harness/ipam.ts";

let cluster: TestCluster;
const pool = controllerPool();

before(async () => {
  cluster = await useCluster();
});

/** A controller process, SIGKILLed when the test ends (passed or not), so it serves no later test. */
function start(t: TestContext, identity: string, args: string[] = []): ControllerProcess {
  return pool.start(cluster.kubeconfigPath, identity, { args, test: t });
}

/** Creates `count` requests with bounded concurrency. */
async function createRequests(
  client: KubeClient,
  namespace: string,
  prefix: string,
  count: number,
  range: string,
) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await client.create<IPAMRequest>(ipamRequestResource, {
        apiVersion: API_VERSION,
        kind: "IPAMRequest",
        metadata: { name: `${prefix}-${i}`, namespace },
        spec: { ipam: { name: range } },
      });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

async function countReady(client: KubeClient, namespace: string): Promise<number> {
  const list = await client.listAll<IPAMRequest>(ipamRequestResource, { namespace });
  return list.items.filter((r) => r.status?.state === "Ready").length;
}

async function assertAllReady(client: KubeClient, namespace: string, expected: number): Promise<void> {
  const list = await client.listAll<IPAMRequest>(ipamRequestResource, { namespace });
  const waiting = list.items.filter((r) => r.status?.state !== "Ready");
  const sample = waiting.slice(0, 5).map((r) => `${r.metadata.name}: ${JSON.stringify(r.status ?? {})}`);
  assert.equal(list.items.length - waiting.length, expected, `not Ready yet: ${sample.join("; ")}`);
}

async function settledWithoutProblems(f: IpamFixture, namespace: string, expected: number): Promise<void> {
  await eventually(() => assertAllReady(f.client, namespace, expected), {
    timeoutMs: 120_000,
    intervalMs: 250,
  });
  await invariantsHold(f.client, { namespaces: [namespace], allReady: true }, 30_000);
}

describe("controller processes", () => {
  it("kill -9 while 500 requests are being allocated, then a restart: all Ready, no overlap, no leak", async (t) => {
    const ns = await cluster.createNamespace("crash");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.60.0.0/16"], chunkSize: 28 });
    const first = start(t, "crash-1");
    const creating = createRequests(f.client, ns, "req", 500, "pool");
    // Kill it in the middle: once some, but not all, allocations are published.
    await eventually(
      async () => assert.ok((await countReady(f.client, ns)) >= 50, "50 allocations published"),
      {
        timeoutMs: 60_000,
        intervalMs: 20,
      },
    );
    await first.kill("SIGKILL");
    await creating;
    const readyAtCrash = await countReady(f.client, ns);
    assert.ok(readyAtCrash < 500, `the crash came too late to prove anything (${readyAtCrash} ready)`);
    start(t, "crash-2");
    await settledWithoutProblems(f, ns, 500);
    await Promise.all(pool.processes.map((p) => p.kill("SIGTERM")));
    f.client.close();
  });

  it("two controllers without leader election on the same 1,000 requests never overlap", async (t) => {
    const ns = await cluster.createNamespace("twins");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.61.0.0/16"], chunkSize: 30 });
    const a = start(t, "twin-a");
    const b = start(t, "twin-b");
    await createRequests(f.client, ns, "req", 1000, "pool");
    await settledWithoutProblems(f, ns, 1000);
    await Promise.all([a.kill("SIGTERM"), b.kill("SIGTERM")]);
    f.client.close();
  });

  it("leader failover: the standby takes over when the leader dies", async (t) => {
    const ns = await cluster.createNamespace("failover");
    const f = ipamFixture(cluster, ns);
    await f.range("pool", { ranges: ["10.62.0.0/24"] });
    const args = [
      "--leader-elect",
      "--leader-election-namespace",
      ns,
      "--leader-elect-lease-duration",
      "3",
      "--leader-elect-renew-deadline",
      "2",
      "--leader-elect-retry-period",
      "0.5",
    ];
    const one = start(t, "leader-1", args);
    const two = start(t, "leader-2", args);
    await f.request("before", { ipam: { name: "pool" } });
    await f.settled("before", (r) => r.status?.state === "Ready");
    const leaderLog = (p: ControllerProcess) =>
      p.output().includes("allocations rebuilt from the API server");
    const leader = await eventually(() => {
      const leaders = [one, two].filter(leaderLog);
      assert.equal(leaders.length, 1, "exactly one process leads");
      return leaders[0] as ControllerProcess;
    });
    const standby = leader === one ? two : one;
    await leader.kill("SIGKILL");
    await f.request("after", { ipam: { name: "pool" } });
    const served = await f.settled("after", (r) => r.status?.state === "Ready");
    assert.equal(served.status?.cidr, "10.62.0.1/32");
    assert.ok(leaderLog(standby), "the standby took over");
    await invariantsHold(f.client, { namespaces: [ns], allReady: true });
    await standby.kill("SIGTERM");
    f.client.close();
  });
});
