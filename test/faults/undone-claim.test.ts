// Regression (found by the write-fault scenario in CI): a claim whose allocation object could not be
// created was undone without asking for a range status update, so a status written while the claim
// was in flight kept counting it. Deterministic, with the controller's ports faked.

import assert from "node:assert/strict";
import { it } from "node:test";
import { API_VERSION, type IPAMRange, type IPAMRequest } from "../../src/api/types.ts";
import { fakeController } from "../harness/fake-ports.ts";

it("an undone claim asks for the range status to be written again", async () => {
  const range: IPAMRange = {
    apiVersion: API_VERSION,
    kind: "IPAMRange",
    metadata: { name: "r", namespace: "ns", uid: "range-uid", generation: 1 },
    spec: { ranges: ["10.0.0.0/30"] },
  };
  const request: IPAMRequest = {
    apiVersion: API_VERSION,
    kind: "IPAMRequest",
    metadata: {
      name: "a",
      namespace: "ns",
      uid: "req-uid",
      generation: 1,
      finalizers: ["mandelsoft.org/ipam"],
    },
    spec: { ipam: { name: "r" } },
  };
  let rangeStatusRequested = 0;
  const controller = fakeController(
    { ranges: [range], requests: [request] },
    {
      // The create is refused and nothing exists afterwards: the claim must be undone.
      createAllocation: async () => {
        throw Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
      },
      getRequest: async () => request,
    },
    { rangeQueue: { add: () => {}, addAfter: () => void rangeStatusRequested++ } },
  );
  controller.bootstrap();
  await assert.rejects(controller.reconcileRequest("ns/a"), /connection refused/);
  assert.deepEqual(controller.snapshot().find((s) => s.range === "ns/r")?.held, [], "the claim is undone");
  assert.ok(rangeStatusRequested > 0, "a range status update is queued after the undo");
});
