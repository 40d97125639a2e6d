// Regression (found by the write-fault scenario): a range status write that failed but was applied,
// followed by a release that brought the usage back to what the (lagging) cache still showed, left
// the server with the wrong usage figures: the controller compared only with its cache and skipped
// the write. Deterministic, with the controller's ports faked.

import assert from "node:assert/strict";
import { it } from "node:test";
import {
  API_VERSION,
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRangeStatus,
} from "../../src/api/types.ts";
import { fakeController } from "../harness/fake-ports.ts";

it("a range status write that failed after it was applied is written again when the usage reverts", async () => {
  const range: IPAMRange = {
    apiVersion: API_VERSION,
    kind: "IPAMRange",
    metadata: { name: "r", namespace: "ns", uid: "range-uid", generation: 1 },
    spec: { ranges: ["10.0.0.0/30"] },
  };
  const allocation: IPAMAllocation = {
    apiVersion: API_VERSION,
    kind: "IPAMAllocation",
    metadata: { name: "r.10-0-0-0-32", namespace: "ns", uid: "alloc-uid" },
    spec: {
      range: { name: "r", uid: "range-uid" },
      cidr: "10.0.0.0/32",
      request: { namespace: "ns", name: "a", uid: "req-uid" },
    },
  };
  const server: IPAMRangeStatus[] = [];
  let failNext = false;
  const allocations: IPAMAllocation[] = [allocation];
  const controller = fakeController(
    { ranges: [range], allocations },
    {
      patchRangeStatus: async (_r, status) => {
        server.push(status); // applied…
        if (failNext) {
          failNext = false;
          throw Object.assign(new Error("etcdserver: request timed out"), { status: 500 }); // …but reported failed
        }
      },
    },
  );
  controller.bootstrap();
  // The cache shows the status of a moment ago: nothing allocated.
  await controller.reconcileRange("ns/r");
  range.status = server.at(-1);
  assert.equal(range.status?.allocated, "1");
  allocations.length = 0;
  controller.onAllocationDelete(allocation);
  await controller.reconcileRange("ns/r");
  range.status = server.at(-1);
  assert.equal(range.status?.allocated, "0");

  // Allocated again: the write of "1" is applied but reported failed; the cache still shows "0".
  allocations.push(allocation);
  controller.onAllocationUpsert(allocation);
  failNext = true;
  await assert.rejects(controller.reconcileRange("ns/r"));
  assert.equal(server.at(-1)?.allocated, "1");
  // Released again before the cache caught up: the desired "0" equals the cache, not the server.
  allocations.length = 0;
  controller.onAllocationDelete(allocation);
  await controller.reconcileRange("ns/r");
  assert.equal(server.at(-1)?.allocated, "0", "the server holds the true usage");
});
