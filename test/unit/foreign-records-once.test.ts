// A record of another controller's cluster allocation namespace is reported once, not on every look
// (resyncs and updates queue it again); a new record under the same name is reported again.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API_VERSION, type IPAMAllocation } from "../../src/api/types.ts";
import { fakeController } from "../harness/fake-ports.ts";

function foreignRecord(uid: string): IPAMAllocation {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMAllocation",
    metadata: { name: "pods-10.0.0.0-30", namespace: "elsewhere", uid },
    spec: {
      range: { kind: "ClusterIPAMRange", name: "pods", uid: "pods-uid" },
      cidr: "10.0.0.0/30",
      request: { namespace: "ns", name: "a", uid: "a-uid" },
    },
  };
}

describe("foreign cluster records", () => {
  it("are reported once per record uid", async () => {
    const key = "elsewhere/pods-10.0.0.0-30";
    const allocations = [foreignRecord("first")];
    const events: string[] = [];
    const controller = fakeController(
      { allocations },
      {},
      {
        clusterAllocationNamespace: "kube-system",
        events: { emit: (o, type, reason) => void events.push(`${o.metadata.uid} ${type} ${reason}`) },
      },
    );
    await controller.reconcileAllocation(key);
    await controller.reconcileAllocation(key);
    assert.deepEqual(events, ["first Warning ForeignClusterAllocationNamespace"]);
    allocations[0] = foreignRecord("second");
    await controller.reconcileAllocation(key);
    await controller.reconcileAllocation(key);
    assert.deepEqual(events, [
      "first Warning ForeignClusterAllocationNamespace",
      "second Warning ForeignClusterAllocationNamespace",
    ]);
  });
});
