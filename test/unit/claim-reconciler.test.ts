// The claim reconciler's decisions on faked ports: the order that makes a claim safe (finalizer →
// record → fence confirm → publication conditional on the version read before the confirm →
// IPAddress → Ready), nothing published without the fence or after a refused publication, and no
// write at all for other providers' or paused claims; forged Address conditions adopted only where the
// pool admits the namespace; published addresses reserved when the claims' cache completes late; claims
// waiting only on cooling space; IPAddresses whose claim is gone.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ADDRESS_CONDITION,
  CAPI_CORE_API_VERSION,
  CAPI_IPAM_API_VERSION,
  CLUSTER_NAME_LABEL,
  type Cluster,
  type IPAddress,
  type IPAddressClaim,
  PAUSED_ANNOTATION,
  PROTECT_ADDRESS_FINALIZER,
  RELEASE_ADDRESS_FINALIZER,
} from "../../src/api/cluster-api.ts";
import { API_VERSION, type ClusterIPAMRange, FINALIZER, GROUP } from "../../src/api/types.ts";
import type { ClaimDeps, ClaimWriter } from "../../src/controllers/claim-ports.ts";
import { ApiError } from "../../src/runtime/kube.ts";
import { fakeCache, fakeController } from "../harness/fake-ports.ts";
import { rangeObject, recordObject, requestObject } from "../harness/objects.ts";

const noop = () => {};

const range = (annotations?: Record<string, string>) =>
  rangeObject(undefined, annotations ? { metadata: { annotations } } : {});

function claim(name: string, poolRef = { apiGroup: GROUP, kind: "IPAMRange", name: "r" }): IPAddressClaim {
  return {
    apiVersion: CAPI_IPAM_API_VERSION,
    kind: "IPAddressClaim",
    metadata: { name, namespace: "ns", uid: `${name}-uid`, generation: 1, resourceVersion: "3" },
    spec: { poolRef },
  };
}

/** A claim writer that reads nothing back: status and finalizer writes return the claim at the next version. */
function claimWriter(overrides: Partial<ClaimWriter> = {}): ClaimWriter {
  return {
    getClaim: async () => undefined,
    patchClaimStatus: async (c, status, rv) => ({
      ...c,
      status,
      metadata: { ...c.metadata, resourceVersion: String(Number(rv) + 1) },
    }),
    setClaimFinalizer: async (c) => ({
      ...c,
      metadata: { ...c.metadata, resourceVersion: "4", finalizers: [RELEASE_ADDRESS_FINALIZER] },
    }),
    createAddress: async (a) => a,
    getAddress: async () => undefined,
    repairAddress: async () => {},
    unprotectAddress: async () => {},
    deleteAddress: async () => {},
    ...overrides,
  };
}

/** The claim controller's ports over `claims`: no IPAddresses, no Clusters (synced), a queue that drops keys. */
function claimDeps(
  claims: IPAddressClaim[],
  writer: ClaimWriter,
  overrides: Partial<ClaimDeps> = {},
): ClaimDeps {
  return {
    claims: fakeCache(claims),
    addresses: fakeCache([]),
    clusters: fakeCache([]),
    clustersState: () => "synced",
    claimQueue: { add: noop, addAfter: noop },
    writer,
    ...overrides,
  };
}

/** The controller with one range, the given claims, and every write logged in order. */
function setup(
  claims: IPAddressClaim[],
  o: {
    confirm?: boolean;
    publish?: "ok" | 409;
    paused?: boolean;
    /** The Clusters' cache: its state (read at each call) and its objects. */
    clusters?: { state: () => ReturnType<ClaimDeps["clustersState"]>; objects: Cluster[] };
  } = {},
) {
  const log: string[] = [];
  /** `reason: message` of every Ready=False written. */
  const notReady: string[] = [];
  const writer = claimWriter({
    patchClaimStatus: async (c, status, rv) => {
      const types = (status.conditions ?? []).map((x) => `${x.type}=${x.status}`).join(",");
      log.push(`claim status @${rv}: ${types}`);
      const ready = status.conditions?.find((x) => x.type === "Ready" && x.status === "False");
      if (ready) notReady.push(`${ready.reason}: ${ready.message}`);
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
  });
  const deps = claimDeps(claims, writer, {
    clusters: fakeCache(o.clusters?.objects ?? []),
    clustersState: o.clusters?.state ?? (() => "synced"),
  });
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
  return { controller, log, notReady };
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

  it("says why a claim waits while its Cluster may not be read, and serves it once the Clusters' cache is complete", async () => {
    let state: ReturnType<ClaimDeps["clustersState"]> = "pending";
    const cluster: Cluster = {
      apiVersion: CAPI_CORE_API_VERSION,
      kind: "Cluster",
      metadata: { name: "c1", namespace: "ns", uid: "c1-uid" },
    };
    const named = claim("a");
    named.metadata.labels = { [CLUSTER_NAME_LABEL]: "c1" };
    const { controller, log, notReady } = setup([named], {
      clusters: { state: () => state, objects: [cluster] },
    });
    // Not known yet: no write, looked at again (the state may settle as forbidden, which queues nothing).
    assert.ok((await controller.reconcileClaim("ns/a"))?.requeueAfter);
    assert.deepEqual(log, []);
    state = "forbidden";
    assert.equal(await controller.reconcileClaim("ns/a"), undefined);
    assert.deepEqual(log, ["claim status @3: Ready=False"]);
    assert.deepEqual(notReady, [
      "AllocationFailed: cannot read Cluster ns/c1: kubipam may not list clusters.cluster.x-k8s.io (grant get, list and watch on it; RBAC)",
    ]);
    state = "synced";
    log.length = 0;
    assert.equal(await controller.reconcileClaim("ns/a"), undefined);
    assert.equal(log.at(-1), `claim status @5: ${ADDRESS_CONDITION}=True,Ready=True`);
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

describe("claim reconciler: a forged Address condition on a ClusterIPAMRange", () => {
  const pool: ClusterIPAMRange = {
    apiVersion: API_VERSION,
    kind: "ClusterIPAMRange",
    metadata: { name: "pods", uid: "uid-c", generation: 1, finalizers: [FINALIZER] },
    spec: { ranges: ["10.0.0.0/24"], namespaceSelector: { matchLabels: { team: "blue" } } },
  };
  const namespaces = [
    { metadata: { name: "shop", labels: { team: "blue" } } },
    { metadata: { name: "other", labels: { team: "red" } } },
  ];
  const forged = (namespace: string): IPAddressClaim => ({
    apiVersion: CAPI_IPAM_API_VERSION,
    kind: "IPAddressClaim",
    metadata: {
      name: "c",
      namespace,
      uid: `uid-${namespace}`,
      generation: 1,
      resourceVersion: "3",
      finalizers: [RELEASE_ADDRESS_FINALIZER],
    },
    spec: { poolRef: { apiGroup: GROUP, kind: "ClusterIPAMRange", name: "pods" } },
    status: {
      conditions: [
        {
          type: ADDRESS_CONDITION,
          status: "True",
          reason: "Published",
          message: "10.0.0.7/32",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    },
  });

  async function reconcile(namespace: string, range: ClusterIPAMRange = pool) {
    const log: string[] = [];
    const writer = claimWriter({
      patchClaimStatus: async (c, status) => {
        const ready = status.conditions?.find((x) => x.type === "Ready");
        log.push(`Ready=${ready?.status} ${ready?.reason}: ${ready?.message}`);
        return { ...c, status };
      },
      setClaimFinalizer: async (c) => c,
      createAddress: async (a) => {
        log.push(`IPAddress ${a.spec.address}`);
        return a;
      },
    });
    const claims = claimDeps([forged(namespace)], writer);
    const controller = fakeController(
      { clusterRanges: [range], namespaces },
      {
        createAllocation: async (a) => {
          log.push(`record ${a.spec.cidr}`);
          return { ...a, metadata: { ...a.metadata, uid: "record-uid" } };
        },
      },
      { claims, clusterAllocationNamespace: "ipam-records" },
    );
    controller.bootstrap();
    await controller.reconcileClaim(`${namespace}/c`);
    return log;
  }

  it("is adopted for a namespace the selector admits", async () => {
    const log = await reconcile("shop");
    assert.deepEqual(log.slice(0, 2), ["record 10.0.0.7/32", "IPAddress 10.0.0.7"]);
  });

  it("is flagged with the exclusion named, and nothing recorded, when it lies on an excluded address", async () => {
    const log = await reconcile("shop", { ...pool, spec: { ...pool.spec, exclude: ["10.0.0.7"] } });
    assert.equal(log.length, 1);
    assert.match(log[0] ?? "", /^Ready=False AllocationFailed: 10\.0\.0\.7\/32 .*is excluded: .*10\.0\.0\.7/);
  });

  it("is flagged, and nothing recorded, for a namespace the selector does not admit", async () => {
    const log = await reconcile("other");
    assert.deepEqual(log, [
      "Ready=False AllocationFailed: 10.0.0.7/32 was not allocated by kubipam and ClusterIPAMRange pods does not admit namespace other: delete this claim",
    ]);
  });
});

describe("claim reconciler: claims' cache complete only after bootstrap", () => {
  it("reserves an address a claim published without a record before another claim is served", async () => {
    const claims: IPAddressClaim[] = [];
    const created: string[] = [];
    const deps = claimDeps(claims, claimWriter());
    const controller = fakeController(
      { ranges: [range()] },
      {
        createAllocation: async (a) => {
          created.push(`${a.spec.cidr} for ${a.spec.request.name}`);
          return { ...a, metadata: { ...a.metadata, uid: `record-${created.length}` } };
        },
      },
      { claims: deps },
    );
    // The claims' cache is empty at bootstrap (discovery failed then), complete later.
    controller.bootstrap();
    const published = claim("a");
    published.metadata.finalizers = [RELEASE_ADDRESS_FINALIZER];
    published.status = {
      conditions: [
        {
          type: ADDRESS_CONDITION,
          status: "True",
          reason: "Published",
          message: "10.0.0.0/32",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    };
    claims.push(published, claim("b"));
    controller.onClaimsServed();
    await controller.reconcileClaim("ns/b");
    assert.deepEqual(created, ["10.0.0.1/32 for b"]);
  });
});

describe("claim reconciler: cooling space (§7 reuseCooldownSeconds)", () => {
  it("a claim waiting only on cooling space says until when, is requeued for then, and is served then", async () => {
    const T0 = Date.parse("2026-12-01T07:00:00.000Z");
    let now = T0;
    const pool = rangeObject(
      { ranges: ["10.0.0.0/31"], reuseCooldownSeconds: 30 },
      { status: { cooling: ["10.0.0.0/32@2026-12-01T07:00:30.000Z"] } },
    );
    const holder = requestObject(
      "a",
      { size: 32 },
      { state: "Ready", cidr: "10.0.0.1/32" },
      { finalizers: [] },
    );
    const messages: string[] = [];
    const created: string[] = [];
    const writer = claimWriter({
      patchClaimStatus: async (c, status, rv) => {
        const ready = status.conditions?.find((x) => x.type === "Ready");
        if (ready) messages.push(`${ready.reason}: ${ready.message}`);
        return { ...c, status, metadata: { ...c.metadata, resourceVersion: String(Number(rv) + 1) } };
      },
    });
    const deps = claimDeps([claim("c")], writer);
    const controller = fakeController(
      {
        ranges: [pool],
        requests: [holder],
        allocations: [recordObject("10.0.0.1/32", holder, "rec-a")],
      },
      {
        createAllocation: async (a) => {
          created.push(a.spec.cidr);
          return { ...a, metadata: { ...a.metadata, uid: "rec-c" } };
        },
      },
      { claims: deps, now: () => new Date(now) },
    );
    controller.bootstrap();
    now = T0 + 10_000;
    assert.deepEqual(await controller.reconcileClaim("ns/c"), { requeueAfter: 20_001 });
    assert.match(messages.at(-1) ?? "", /^PoolExhausted: .*cooling down until 2026-12-01T07:00:30\.000Z/);
    assert.deepEqual(created, []);
    // The requeue comes due: served without anything else happening (no range reconcile in between).
    now = T0 + 30_001;
    assert.equal(await controller.reconcileClaim("ns/c"), undefined);
    assert.deepEqual(created, ["10.0.0.0/32"]);
    assert.match(messages.at(-1) ?? "", /^Ready: 10\.0\.0\.0\/31 from IPAMRange ns\/r/);
  });
});

describe("claim reconciler: an IPAddress whose claim is gone", () => {
  const address = (
    owners: { apiVersion: string; kind: string; uid: string; controller?: boolean }[],
  ): IPAddress => ({
    apiVersion: CAPI_IPAM_API_VERSION,
    kind: "IPAddress",
    metadata: {
      name: "a",
      namespace: "ns",
      uid: "address-uid",
      finalizers: [PROTECT_ADDRESS_FINALIZER],
      ownerReferences: owners.map((o) => ({ ...o, name: o.kind === "IPAddressClaim" ? "a" : "r" })),
    },
    spec: {
      address: "10.0.0.0",
      prefix: 30,
      claimRef: { name: "a" },
      poolRef: { apiGroup: GROUP, kind: "IPAMRange", name: "r" },
    },
  });
  const kubipams = [
    { apiVersion: CAPI_IPAM_API_VERSION, kind: "IPAddressClaim", uid: "a-uid", controller: true },
    { apiVersion: API_VERSION, kind: "IPAMRange", uid: "range-uid" },
  ];

  async function sweep(owners: typeof kubipams, live: IPAddressClaim | undefined) {
    const log: string[] = [];
    const writer = claimWriter({
      getClaim: async () => live,
      patchClaimStatus: async (c) => c,
      setClaimFinalizer: async (c) => c,
      unprotectAddress: async (a) => {
        log.push(`unprotect ${a.metadata.uid}`);
      },
      deleteAddress: async (a) => {
        log.push(`delete ${a.metadata.uid}`);
      },
    });
    const queued: string[] = [];
    const deps = claimDeps([], writer, {
      addresses: fakeCache([address(owners)]),
      claimQueue: { add: (k) => queued.push(k), addAfter: noop },
    });
    const controller = fakeController({ ranges: [range()] }, {}, { claims: deps });
    controller.bootstrap();
    for (const key of queued) await controller.reconcileClaim(key);
    return { log, queued };
  }

  it("is unprotected and deleted when the claim is gone (its finalizer stripped by hand)", async () => {
    const { log, queued } = await sweep(kubipams, undefined);
    assert.deepEqual(queued, ["ns/a"]);
    assert.deepEqual(log, ["unprotect address-uid", "delete address-uid"]);
  });

  it("is kept when the claim exists but the cache does not show it yet", async () => {
    const { log } = await sweep(kubipams, claim("a"));
    assert.deepEqual(log, []);
  });

  it("goes when a new claim of that name (another uid) exists: the new claim gets its own", async () => {
    const renewed = claim("a");
    renewed.metadata.uid = "another-uid";
    const { log } = await sweep(kubipams, renewed);
    assert.deepEqual(log, ["unprotect address-uid", "delete address-uid"]);
  });

  it("is never touched when kubipam did not make it", async () => {
    const { log, queued } = await sweep(kubipams.slice(0, 1), undefined);
    assert.deepEqual([log, queued], [[], []]);
  });
});
