// Work is linear in the number of requests: no re-enqueueing of a whole range per allocation (the
// original's O(n²)). Counted with the controller's own metrics, in a fresh controller.

import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { type IPAMRequest, ipamRequestResource } from "../../src/api/types.ts";
import { eventually, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let controller: RunningController;
let f: IpamFixture;

before(async () => {
  const cluster = await useCluster();
  f = ipamFixture(cluster, await cluster.createNamespace("linear"));
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  f?.client.close();
});

/** Request reconciles and API writes so far, from the controller's own metrics. */
async function counters(
  c: RunningController,
): Promise<{ reconciles: number; writes: number; fenceWrites: number }> {
  const metrics = await c.manager.registry.getMetricsAsJSON();
  const sum = (name: string, match: (labels: Record<string, string | number>) => boolean) =>
    (metrics.find((m) => m.name === name)?.values ?? [])
      .filter((v) => match(v.labels as Record<string, string | number>))
      .reduce((total, v) => total + v.value, 0);
  return {
    reconciles: sum("controller_runtime_reconcile_total", (l) => l.controller === "ipamrequest"),
    // Range status writes are debounced by time, not by count: counted apart.
    writes: sum(
      "rest_client_requests_total",
      (l) =>
        ["create", "update", "patch", "delete"].includes(String(l.verb)) &&
        !String(l.resource).startsWith("ipamranges") &&
        l.resource !== "leases",
    ),
    // The allocation fence: periodic renewals and the confirmations before publishing (batched).
    fenceWrites: sum("rest_client_requests_total", (l) => l.verb === "update" && l.resource === "leases"),
  };
}

it("work is linear: N requests cost O(N) reconciles and API writes", async () => {
  await f.range("linear", { ranges: ["10.70.0.0/16"], chunkSize: 28 });
  const before = await counters(controller);
  const started = performance.now();
  const n = 200;
  for (let start = 0; start < n; start += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => f.request(`linear-${start + i}`, { ipam: { name: "linear" } })),
    );
  }
  await eventually(
    async () => {
      const list = await f.client.listAll<IPAMRequest>(ipamRequestResource, { namespace: f.namespace });
      const ready = list.items.filter(
        (r) => r.metadata.name?.startsWith("linear-") && r.status?.state === "Ready",
      );
      assert.equal(ready.length, n);
    },
    { timeoutMs: 60_000 },
  );
  const after = await counters(controller);
  const reconciles = after.reconciles - before.reconciles;
  const writes = after.writes - before.writes;
  // Per request: its creation and our status write wake it; per allocation two writes: the record
  // and the status (no finalizer on the request).
  assert.ok(reconciles <= 2 * n + 10, `${reconciles} reconciles for ${n} requests`);
  assert.ok(writes <= 2 * n + 10, `${writes} API writes for ${n} allocations`);
  const fenceWrites = after.fenceWrites - before.fenceWrites;
  // Publications waiting together share one confirmation (20 requests arrive at a time), plus the
  // periodic renewals of the test fence (every 0.5 s).
  const seconds = (performance.now() - started) / 1000;
  assert.ok(fenceWrites <= n / 4 + 2 * seconds + 5, `${fenceWrites} fence writes for ${n} allocations`);
  console.log(
    `linear: ${reconciles} reconciles, ${writes} writes, ${fenceWrites} fence writes for ${n} allocations`,
  );
});
