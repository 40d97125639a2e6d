// Claims that someone tampered with, on faked ports: an Address condition rewritten to another (free)
// address is not followed while the claim's record or IPAddress shows its block. And a revocation
// always changes the claim's status (so its resourceVersion moves), even repeated with the same record.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ADDRESS_CONDITION,
  CAPI_IPAM_API_VERSION,
  type IPAddress,
  type IPAddressClaim,
  PROTECT_ADDRESS_FINALIZER,
  RELEASE_ADDRESS_FINALIZER,
} from "../../src/api/cluster-api.ts";
import { rangePool } from "../../src/api/pool-ref.ts";
import { API_VERSION, GROUP, type IPAMAllocation } from "../../src/api/types.ts";
import { recordName } from "../../src/api/validation.ts";
import type { ClaimDeps, ClaimWriter } from "../../src/controllers/claim-ports.ts";
import { ApiError } from "../../src/runtime/kube.ts";
import { fakeCache, fakeController } from "../harness/fake-ports.ts";
import { rangeObject } from "../harness/objects.ts";

const noop = () => {};
const POOL = rangePool("ns", "r");

const range = rangeObject();

/** Claim `a`, published with `address` (its Address condition) and Ready. */
function publishedClaim(address: string): IPAddressClaim {
  return {
    apiVersion: CAPI_IPAM_API_VERSION,
    kind: "IPAddressClaim",
    metadata: {
      name: "a",
      namespace: "ns",
      uid: "a-uid",
      generation: 1,
      resourceVersion: "9",
      finalizers: [RELEASE_ADDRESS_FINALIZER],
    },
    spec: { poolRef: { apiGroup: GROUP, kind: "IPAMRange", name: "r" } },
    status: {
      addressRef: { name: "a" },
      conditions: [
        {
          type: ADDRESS_CONDITION,
          status: "True",
          reason: "Published",
          message: address,
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
        {
          type: "Ready",
          status: "True",
          reason: "Ready",
          message: "ok",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    },
  };
}

function claimRecord(cidr: string): IPAMAllocation {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMAllocation",
    metadata: { name: recordName(POOL, cidr), namespace: "ns", uid: "record-uid" },
    spec: {
      range: { name: "r", uid: "range-uid" },
      cidr,
      request: { kind: "IPAddressClaim", namespace: "ns", name: "a", uid: "a-uid" },
    },
  };
}

function ipAddress(address: string): IPAddress {
  return {
    apiVersion: CAPI_IPAM_API_VERSION,
    kind: "IPAddress",
    metadata: {
      name: "a",
      namespace: "ns",
      finalizers: [PROTECT_ADDRESS_FINALIZER],
      ownerReferences: [
        {
          apiVersion: CAPI_IPAM_API_VERSION,
          kind: "IPAddressClaim",
          name: "a",
          uid: "a-uid",
          controller: true,
        },
      ],
    },
    spec: {
      address,
      prefix: 30,
      claimRef: { name: "a" },
      poolRef: { apiGroup: GROUP, kind: "IPAMRange", name: "r" },
    },
  };
}

interface Faults {
  /** The pool's reuseCooldownSeconds. */
  cooldown?: number;
  /** Record creates and reads fail with 500 (outcome unknown: the claim stays in flight). */
  createFails?: boolean;
  /** Record deletes fail with 500. */
  deleteFails?: boolean;
}

function setup(
  claim: IPAddressClaim | IPAddressClaim[],
  records: IPAMAllocation[],
  addresses: IPAddress[],
  faults: Faults = {},
) {
  const claims = Array.isArray(claim) ? claim : [claim];
  const log: string[] = [];
  const writer: ClaimWriter = {
    getClaim: async () => claims[0],
    patchClaimStatus: async (c, status, rv) => {
      const address = status.conditions?.find((x) => x.type === ADDRESS_CONDITION)?.message;
      const ready = status.conditions?.find((x) => x.type === "Ready")?.message;
      log.push(address ? `claim status @${rv}: Address ${address}` : `claim status @${rv}: Ready ${ready}`);
      return { ...c, status };
    },
    setClaimFinalizer: async (c) => c,
    createAddress: async (a) => {
      log.push(`IPAddress create ${a.spec.address}`);
      return a;
    },
    getAddress: async () => undefined,
    repairAddress: async (a, spec) => void log.push(`IPAddress patch ${a.spec.address} -> ${spec.address}`),
    unprotectAddress: async () => {},
    deleteAddress: async () => {},
  };
  const deps: ClaimDeps = {
    claims: fakeCache(claims),
    addresses: fakeCache(addresses),
    clusters: fakeCache([]),
    clustersState: () => "synced",
    claimQueue: { add: noop, addAfter: noop },
    writer,
  };
  const controller = fakeController(
    {
      ranges: [
        faults.cooldown
          ? { ...range, spec: { ...range.spec, reuseCooldownSeconds: faults.cooldown } }
          : range,
      ],
      allocations: records,
    },
    {
      createAllocation: async (a) => {
        log.push(`record ${a.spec.cidr}`);
        if (faults.createFails) throw new ApiError({ status: 500, reason: "InternalError", message: "boom" });
        return { ...a, metadata: { ...a.metadata, uid: "new-record-uid" } };
      },
      getAllocation: async () => {
        if (faults.createFails) throw new ApiError({ status: 500, reason: "InternalError", message: "boom" });
        return undefined;
      },
      deleteAllocation: async (_ns, name) => {
        log.push(`delete ${name}`);
        if (faults.deleteFails) throw new ApiError({ status: 500, reason: "InternalError", message: "boom" });
      },
      patchRangeStatus: async (_r, status) => {
        if (status.cooling)
          log.push(`range cooling [${status.cooling.map((c) => c.split("@")[0]).join(",")}]`);
      },
    },
    {
      claims: deps,
      allocationQueue: { add: (k) => void log.push(`gc ${k}`), addAfter: noop },
      events: { emit: (_o, type, reason) => void log.push(`event ${type} ${reason}`) },
    },
  );
  controller.bootstrap();
  // Bootstrap queues every record once: only what the claim's reconcile does counts.
  log.length = 0;
  return { controller, log };
}

describe("a published claim whose Address condition was rewritten", () => {
  for (const [what, records, addresses] of [
    ["its record and IPAddress", [claimRecord("10.0.0.0/32")], [ipAddress("10.0.0.0")]],
    ["its record (no IPAddress)", [claimRecord("10.0.0.0/32")], []],
    ["its IPAddress (no record)", [], [ipAddress("10.0.0.0")]],
  ] as const) {
    it(`keeps the block ${what} shows: condition restored (conditional), Warning event, nothing freed`, async () => {
      const { controller, log } = setup(publishedClaim("10.0.0.2/32"), [...records], [...addresses]);
      await controller.reconcileClaim("ns/a");
      assert.deepEqual(log, [
        "claim status @9: Address 10.0.0.0/32",
        "event Warning AddressConditionRestored",
      ]);
    });
  }
});

describe("revoking a claim's unpublished record", () => {
  it("always changes the claim's status, even when the same revocation was written before", async () => {
    // A /31 recorded for a claim is not an address of the pool: the claim's record is revoked.
    const claim: IPAddressClaim = { ...publishedClaim("unused"), status: {} };
    const once = setup(claim, [claimRecord("10.0.0.0/31")], []);
    await once.controller.reconcileClaim("ns/a");
    const first = once.log.find((l) => l.startsWith("claim status @9: Ready reallocating"));
    assert.ok(first, once.log.join("\n"));
    // The claim already says exactly that (a second revocation of the same record): still a change.
    const message = first.replace("claim status @9: Ready ", "");
    const again: IPAddressClaim = {
      ...claim,
      status: {
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "AllocationFailed",
            message,
            lastTransitionTime: "2026-01-01T00:00:00Z",
          },
        ],
      },
    };
    const twice = setup(again, [claimRecord("10.0.0.0/31")], []);
    await twice.controller.reconcileClaim("ns/a");
    const second = twice.log.find((l) => l.startsWith("claim status @9: Ready reallocating"));
    assert.ok(second, twice.log.join("\n"));
    assert.notEqual(second, first);
  });
});

describe("releasing a deleted claim", () => {
  const deleting = (c: IPAddressClaim): IPAddressClaim => ({
    ...c,
    metadata: { ...c.metadata, deletionTimestamp: "2026-01-01T00:00:00Z" },
  });

  it("abandons the cooldown announcement when a record delete fails", async () => {
    const claims = [deleting(publishedClaim("10.0.0.0/32"))];
    const { controller, log } = setup(claims, [claimRecord("10.0.0.0/32")], [], {
      cooldown: 60,
      deleteFails: true,
    });
    await assert.rejects(controller.reconcileClaim("ns/a"));
    assert.deepEqual(log, ["range cooling [10.0.0.0/32]", "delete r.10-0-0-0-32"]);
    // The block is still held: the range's next status write no longer says it cools down.
    log.length = 0;
    await controller.reconcileRange("ns/r");
    assert.deepEqual(
      log.filter((l) => l.startsWith("range cooling")),
      ["range cooling []"],
    );
  });

  it("frees a block that was never recorded at once, without a cooldown", async () => {
    const claims: IPAddressClaim[] = [{ ...publishedClaim("unused"), status: {} }];
    const { controller, log } = setup(claims, [], [], { cooldown: 60, createFails: true });
    // The record create's outcome is unknown: the claim's block stays in flight.
    await assert.rejects(controller.reconcileClaim("ns/a"));
    assert.deepEqual(log, ["record 10.0.0.0/32"]);
    claims[0] = deleting(claims[0] as IPAddressClaim);
    log.length = 0;
    await controller.reconcileClaim("ns/a");
    assert.deepEqual(
      log.filter((l) => l.startsWith("range cooling")),
      [],
    );
  });
});
