// Hardening of the controller against what an upgrade or a neighbour leaves behind, without a cluster
// (ports faked, test/harness/fake-ports.ts): a ClusterIPAMRange kind that is not served, records of
// another controller's cluster allocation namespace.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API_VERSION, type IPAMAllocation, type IPAMRequestStatus } from "../../src/api/types.ts";
import { fakeController } from "../harness/fake-ports.ts";
import { requestObject } from "../harness/objects.ts";

describe("ClusterIPAMRange kind not served", () => {
  it("a request naming a ClusterIPAMRange is told that its CRD is not installed", async () => {
    const statuses: IPAMRequestStatus[] = [];
    const controller = fakeController(
      { requests: [requestObject("a", { ipam: { kind: "ClusterIPAMRange", name: "pods" } })] },
      {
        patchRequestStatus: async (r, status) => {
          statuses.push(status);
          return r;
        },
      },
      { clusterRangesUnavailable: () => "the ClusterIPAMRange CRD is not installed: apply the CRDs" },
    );
    controller.bootstrap();
    await controller.reconcileRequest("ns/a");
    const last = statuses.at(-1);
    assert.equal(last?.state, "Invalid");
    assert.match(
      last?.message ?? "",
      /ClusterIPAMRange pods cannot be read: the ClusterIPAMRange CRD is not installed/,
    );
  });
});

describe("records of another cluster allocation namespace", () => {
  const foreign: IPAMAllocation = {
    apiVersion: API_VERSION,
    kind: "IPAMAllocation",
    metadata: { name: "pods-10.0.0.0-30", namespace: "elsewhere", uid: "rec-uid", finalizers: ["x"] },
    spec: {
      range: { kind: "ClusterIPAMRange", name: "pods", uid: "pods-uid" },
      cidr: "10.0.0.0/30",
      request: { namespace: "ns", name: "a", uid: "a-uid" },
    },
  };

  it("are never deleted: reported as another controller's (error and Warning event)", async () => {
    const deleted: string[] = [];
    const errors: string[] = [];
    const events: string[] = [];
    const queued: string[] = [];
    const controller = fakeController(
      { allocations: [foreign] },
      { deleteAllocation: async (_ns, name) => void deleted.push(name) },
      {
        clusterAllocationNamespace: "kube-system",
        allocationQueue: { add: (k) => void queued.push(k), addAfter: () => {} },
        log: { debug: () => {}, info: () => {}, warn: () => {}, error: (m) => void errors.push(m) },
        events: { emit: (_o, type, reason) => void events.push(`${type} ${reason}`) },
      },
    );
    controller.bootstrap();
    assert.ok(queued.includes("elsewhere/pods-10.0.0.0-30"));
    await controller.reconcileAllocation("elsewhere/pods-10.0.0.0-30");
    assert.deepEqual(deleted, []);
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? "", /different --cluster-allocation-namespace/);
    assert.deepEqual(events, ["Warning ForeignClusterAllocationNamespace"]);
  });
});
