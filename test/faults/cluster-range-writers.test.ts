// "Never twice" on a ClusterIPAMRange: controller processes without leader election serve requests of
// mixed sizes from three namespaces on one cluster-scoped pool, and the fence holder is killed (-9) in
// the middle. Its records all live in the cluster allocation namespace; only the API server (one
// record name per block there, and the allocation fence) keeps the holders apart.

import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { API_VERSION, type IPAMRequest, ipamRequestResource } from "../../src/api/types.ts";
import { type ControllerProcess, controllerPool } from "../../src/testing/controller-process.ts";
import { checkInvariants } from "../../src/testing/invariants.ts";
import { type ClusterRangeFixture, clusterRangeFixture } from "../harness/cluster-ranges.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";
import { type IpamFixture, ipamFixture } from "../harness/ipam.ts";
import { killHolder } from "./writers.ts";

const SIZES = [26, 28, 30, 32];
const COUNT = 90;

let cluster: TestCluster;
let f: IpamFixture;
let cr: ClusterRangeFixture;
const pool = controllerPool();
let cleanupWriter: ControllerProcess | undefined;

before(async () => {
  cluster = await useCluster();
  f = ipamFixture(cluster, await cluster.createNamespace("crw-0"));
  cr = clusterRangeFixture(f.client);
});

after(async () => {
  // The cluster range and its requests go while one controller serves (its records hold them).
  try {
    cleanupWriter = pool.start(cluster.kubeconfigPath, "crw-cleanup");
    await cr.cleanup();
  } finally {
    await cleanupWriter?.kill("SIGTERM");
    f.client.close();
  }
});

describe("concurrent writers on a ClusterIPAMRange", () => {
  it("3 controllers without leader election, 3 namespaces, the fence holder killed: no overlap, no leak", async (t: TestContext) => {
    const namespaces = [
      f.namespace,
      await cluster.createNamespace("crw-1"),
      await cluster.createNamespace("crw-2"),
    ];
    for (const ns of namespaces) await cr.label(ns, { "kubipam-test/crw": "yes" });
    const name = (
      await cr.create("crw", {
        ranges: ["10.73.0.0/20"],
        namespaceSelector: { matchLabels: { "kubipam-test/crw": "yes" } },
      })
    ).metadata.name as string;
    const group = ["c-0", "c-1", "c-2"].map((id) => pool.start(cluster.kubeconfigPath, id, { test: t }));
    let next = 0;
    let killed: Promise<void> | undefined;
    const worker = async () => {
      while (next < COUNT) {
        const i = next++;
        if (i === COUNT / 3) killed = killHolder(f.client, group).then(() => {});
        await f.client.create<IPAMRequest>(ipamRequestResource, {
          apiVersion: API_VERSION,
          kind: "IPAMRequest",
          metadata: { name: `req-${i}`, namespace: namespaces[i % namespaces.length] },
          spec: { ipam: { kind: "ClusterIPAMRange", name }, size: SIZES[i % SIZES.length] },
        });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await killed;
    await eventually(
      async () => {
        const problems = await checkInvariants(f.client, {
          namespaces,
          clusterRanges: [name],
          allReady: true,
        });
        assert.deepEqual(problems, []);
        const range = await cr.get(name);
        // 90 requests: 23 × /26 (64) + 23 × /28 (16) + 22 × /30 (4) + 22 × /32 (1) addresses.
        assert.equal(range?.status?.allocated, String(23 * 64 + 23 * 16 + 22 * 4 + 22));
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    await Promise.all(group.map((p) => p.kill("SIGTERM")));
  });
});
