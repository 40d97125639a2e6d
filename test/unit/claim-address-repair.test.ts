// AddressKeeper.ensure puts back what a user removed or changed on a claim's IPAddress: its spec, the
// ProtectAddress finalizer, the cluster-name label and the owner references (§8), in one write.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CAPI_IPAM_API_VERSION,
  CLUSTER_NAME_LABEL,
  type IPAddress,
  type IPAddressClaim,
  PROTECT_ADDRESS_FINALIZER,
} from "../../src/api/cluster-api.ts";
import { rangePool } from "../../src/api/pool-ref.ts";
import { GROUP } from "../../src/api/types.ts";
import { AddressKeeper, desiredAddress } from "../../src/controllers/claim-addresses.ts";
import type { AddressMetadataRepair, ClaimDeps } from "../../src/controllers/claim-ports.ts";
import { Cidr } from "../../src/ipam/index.ts";
import { fakeCache } from "../harness/fake-ports.ts";

const noop = () => {};

const claim: IPAddressClaim = {
  apiVersion: CAPI_IPAM_API_VERSION,
  kind: "IPAddressClaim",
  metadata: { name: "a", namespace: "ns", uid: "a-uid", labels: { [CLUSTER_NAME_LABEL]: "c1" } },
  spec: { poolRef: { apiGroup: GROUP, kind: "IPAMRange", name: "r" } },
};

const desired = desiredAddress(claim, rangePool("ns", "r"), {
  cidr: Cidr.parse("10.0.0.1/32"),
  prefix: 30,
  gateway: undefined,
  poolUid: "range-uid",
});

interface Repair {
  rv: string | undefined;
  spec: IPAddress["spec"];
  metadata: AddressMetadataRepair;
}

async function ensure(address: IPAddress) {
  const repairs: Repair[] = [];
  const deps: ClaimDeps = {
    claims: fakeCache([claim]),
    addresses: fakeCache([address]),
    clusters: fakeCache([]),
    clustersState: () => "synced",
    claimQueue: { add: noop, addAfter: noop },
    writer: {
      getClaim: async () => claim,
      patchClaimStatus: async (c) => c,
      setClaimFinalizer: async (c) => c,
      createAddress: async (a) => a,
      getAddress: async () => address,
      repairAddress: async (a, spec, metadata) =>
        void repairs.push({ rv: a.metadata.resourceVersion, spec, metadata }),
      unprotectAddress: async () => {},
      deleteAddress: async () => {},
    },
  };
  const outcome = await new AddressKeeper(deps).ensure(claim, desired);
  return { outcome, repairs };
}

/** The IPAddress as kubipam made it, then changed by `edit`. */
function stored(edit: (a: IPAddress) => void): IPAddress {
  const address: IPAddress = structuredClone({
    ...desired,
    metadata: { ...desired.metadata, uid: "addr-uid", resourceVersion: "7" },
  });
  edit(address);
  return address;
}

describe("the IPAddress of a published claim", () => {
  it("is left alone while it stands as kubipam made it (others' additions included)", async () => {
    const { outcome, repairs } = await ensure(
      stored((a) => {
        a.metadata.finalizers?.push("example.com/keep");
        a.metadata.labels = { ...a.metadata.labels, team: "x" };
      }),
    );
    assert.deepEqual(outcome, { kind: "ok" });
    assert.deepEqual(repairs, []);
  });

  it("gets its ProtectAddress finalizer back, keeping others' finalizers", async () => {
    const { repairs } = await ensure(
      stored((a) => {
        a.metadata.finalizers = ["example.com/keep"];
      }),
    );
    assert.equal(repairs.length, 1);
    assert.equal(repairs[0]?.rv, "7");
    assert.deepEqual(repairs[0]?.metadata, { finalizers: ["example.com/keep", PROTECT_ADDRESS_FINALIZER] });
  });

  it("gets the claim's cluster-name label back when it is changed or removed", async () => {
    const changed = await ensure(
      stored((a) => {
        a.metadata.labels = { [CLUSTER_NAME_LABEL]: "other" };
      }),
    );
    assert.deepEqual(changed.repairs[0]?.metadata, { clusterName: "c1" });
    const removed = await ensure(
      stored((a) => {
        delete a.metadata.labels;
      }),
    );
    assert.deepEqual(removed.repairs[0]?.metadata, { clusterName: "c1" });
  });

  it("gets its owner references back when they are all removed, keeping others' references", async () => {
    const other = { apiVersion: "v1", kind: "ConfigMap", name: "x", uid: "cm-uid" };
    const { outcome, repairs } = await ensure(
      stored((a) => {
        a.metadata.ownerReferences = [other];
      }),
    );
    assert.deepEqual(outcome, { kind: "ok" });
    assert.equal(repairs.length, 1);
    assert.deepEqual(repairs[0]?.metadata, {
      ownerReferences: [...(desired.metadata.ownerReferences ?? []), other],
    });
  });

  it("gets blockOwnerDeletion back on its claim reference, and spec and metadata in the same write", async () => {
    const { repairs } = await ensure(
      stored((a) => {
        const [owner, pool] = a.metadata.ownerReferences ?? [];
        if (!owner || !pool) throw new Error("desired address lacks owner references");
        a.metadata.ownerReferences = [{ ...owner, blockOwnerDeletion: false }, pool];
        a.spec.prefix = 24;
        a.metadata.finalizers = [];
      }),
    );
    assert.equal(repairs.length, 1);
    assert.deepEqual(repairs[0]?.spec, desired.spec);
    assert.deepEqual(repairs[0]?.metadata, {
      finalizers: [PROTECT_ADDRESS_FINALIZER],
      ownerReferences: desired.metadata.ownerReferences,
    });
  });

  it("is not taken over when another object controls it", async () => {
    const { outcome, repairs } = await ensure(
      stored((a) => {
        a.metadata.ownerReferences = [
          { apiVersion: "v1", kind: "ConfigMap", name: "x", uid: "cm-uid", controller: true },
        ];
      }),
    );
    assert.equal(outcome.kind, "problem");
    assert.deepEqual(repairs, []);
  });
});
