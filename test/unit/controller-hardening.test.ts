// Hardening of the controller against what an upgrade or a neighbour leaves behind, without a cluster
// (ports faked, test/harness/fake-ports.ts): a ClusterIPAMRange kind that is not served, records of
// another controller's cluster allocation namespace.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API_VERSION, FINALIZER, type IPAMRequest, type IPAMRequestStatus } from "../../src/api/types.ts";
import { fakeController } from "../harness/fake-ports.ts";

function request(name: string, ipam: IPAMRequest["spec"]["ipam"]): IPAMRequest {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMRequest",
    metadata: {
      name,
      namespace: "ns",
      uid: `${name}-uid`,
      generation: 1,
      resourceVersion: "7",
      finalizers: [FINALIZER],
    },
    spec: { ipam },
  };
}

describe("ClusterIPAMRange kind not served", () => {
  it("a request naming a ClusterIPAMRange is told that its CRD is not installed", async () => {
    const statuses: IPAMRequestStatus[] = [];
    const controller = fakeController(
      { requests: [request("a", { kind: "ClusterIPAMRange", name: "pods" })] },
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
