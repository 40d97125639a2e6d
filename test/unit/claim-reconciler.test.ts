// The claim reconciler's decisions on faked ports: the order that makes a claim safe (finalizer →
// record → fence confirm → publication conditional on the version read before the confirm →
// IPAddress → Ready), nothing published without the fence or after a refused publication, and no
// write at all for other providers' or paused claims.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ADDRESS_CONDITION,
  CAPI_IPAM_API_VERSION,
  type IPAddressClaim,
  PAUSED_ANNOTATION,
  RELEASE_ADDRESS_FINALIZER,
} from "../../src/api/cluster-api.ts";
import { API_VERSION, FINALIZER, GROUP, type IPAMRange } from "../../src/api/types.ts";
import type { ClaimDeps, ClaimWriter } from "../../src/controllers/claim-ports.ts";
import { ApiError } from "../../src/runtime/kube.ts";
import { fakeCache, fakeController } from "../harness/fake-ports.ts";

const noop = () => {};

function range(annotations?: Record<string, string>): IPAMRange {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMRange",
    metadata: {
      name: "r",
      namespace: "ns",
      uid: "range-uid",
      generation: 1,
      finalizers: [FINALIZER],
      ...(annotations ? { annotations } : {}),
    },
    spec: { ranges: ["10.0.0.0/30"] },
  };
}

function claim(name: string, poolRef = { apiGroup: GROUP, kind: "IPAMRange", name: "r" }): IPAddressClaim {
  return {
    apiVersion: CAPI_IPAM_API_VERSION,
    kind: "IPAddressClaim",
    metadata: { name, namespace: "ns", uid: `${name}-uid`, generation: 1, resourceVersion: "3" },
    spec: { poolRef },
  };
}

/** The controller with one range, the given claims, and every write logged in order. */
function setup(
  claims: IPAddressClaim[],
  o: { confirm?: boolean; publish?: "ok" | 409; paused?: boolean } = {},
) {
  const log: string[] = [];
  const writer: ClaimWriter = {
    getClaim: async () => undefined,
    patchClaimStatus: async (c, status, rv) => {
      const types = (status.conditions ?? []).map((x) => `${x.type}=${x.status}`).join(",");
      log.push(`claim status @${rv}: ${types}`);
      if (types.includes(ADDRESS_CONDITION) && o.publish === 409) {
        throw new ApiError({ status: 409, reason: "Conflict", message: "the object has been modified" });
      }
      return { ...c, status, metadata: { ...c.metadata, resourceVersion: String(Number(rv) + 1) } };
    },
    setClaimFinalizer: async (c, present) => {
      log.push(`claim finalizer ${present}`);
      return {
        ...c,
        metadata: { ...c.metadata, resourceVersion: "4", finalizers: [RELEASE_ADDRESS_FINALIZER] },
      };
    },
    createAddress: async (a) => {
      log.push(`IPAddress ${a.spec.address}/${a.spec.prefix}`);
      return a;
    },
    getAddress: async () => undefined,
    patchAddressSpec: async () => {},
    unprotectAddress: async () => {},
    deleteAddress: async () => {},
  };
  const deps: ClaimDeps = {
    claims: fakeCache(claims),
    addresses: fakeCache([]),
    clusters: fakeCache([]),
    clustersState: () => "synced",
    claimQueue: { add: noop, addAfter: noop },
    writer,
  };
  const controller = fakeController(
    { ranges: [range(o.paused ? { [PAUSED_ANNOTATION]: "" } : undefined)] },
    {
      createAllocation: async (a) => {
        log.push(`record ${a.spec.cidr} for ${a.spec.request.kind} ${a.spec.request.name}`);
        return { ...a, metadata: { ...a.metadata, uid: "record-uid" } };
      },
      patchRangeStatus: async () => {},
    },
    {
      claims: deps,
      fence: {
        confirm: async () => {
          log.push("fence confirmed");
          return o.confirm ?? true;
        },
      },
    },
  );
  controller.bootstrap();
  return { controller, log };
}

describe("claim reconciler", () => {
  it("finalizer, record, fence, publication conditional on the version read before the confirm, then IPAddress and Ready", async () => {
    const { controller, log } = setup([claim("a")]);
    assert.equal(await controller.reconcileClaim("ns/a"), undefined);
    assert.deepEqual(log, [
      "claim finalizer true",
      "record 10.0.0.0/32 for IPAddressClaim a",
      "fence confirmed",
      `claim status @4: ${ADDRESS_CONDITION}=True`,
      "IPAddress 10.0.0.0/30",
      `claim status @5: ${ADDRESS_CONDITION}=True,Ready=True`,
    ]);
  });

  it("publishes nothing while the fence cannot be confirmed", async () => {
    const { controller, log } = setup([claim("a")], { confirm: false });
    const result = await controller.reconcileClaim("ns/a");
    assert.ok(result?.requeueAfter);
    assert.deepEqual(log, [
      "claim finalizer true",
      "record 10.0.0.0/32 for IPAddressClaim a",
      "fence confirmed",
    ]);
  });

  it("creates no IPAddress when the publication is refused (the claim changed or was revoked)", async () => {
    const { controller, log } = setup([claim("a")], { publish: 409 });
    const result = await controller.reconcileClaim("ns/a");
    assert.ok(result?.requeueAfter);
    assert.equal(log.filter((l) => l.startsWith("IPAddress")).length, 0);
    assert.equal(log.at(-1), `claim status @4: ${ADDRESS_CONDITION}=True`);
  });

  it("writes nothing for claims of other providers or of a paused pool", async () => {
    const other = setup([
      claim("x", { apiGroup: "ipam.cluster.x-k8s.io", kind: "InClusterIPPool", name: "r" }),
    ]);
    assert.equal(await other.controller.reconcileClaim("ns/x"), undefined);
    assert.deepEqual(other.log, []);
    const paused = setup([claim("a")], { paused: true });
    assert.equal(await paused.controller.reconcileClaim("ns/a"), undefined);
    assert.deepEqual(paused.log, []);
  });

  it("says PoolExhausted once the pool has no free address", async () => {
    const claims = ["a", "b", "c", "d", "e"].map((n) => claim(n));
    const { controller, log } = setup(claims);
    for (const c of claims) await controller.reconcileClaim(`ns/${c.metadata.name}`);
    assert.equal(log.filter((l) => l.startsWith("IPAddress")).length, 4);
    assert.equal(log.at(-1), "claim status @4: Ready=False");
  });
});
