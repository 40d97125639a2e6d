// §7 in the reconcilers, without a cluster (ports faked): the order of the writes that make a cooldown
// survive a crash, the wake-up time of a request Busy on cooling space, exclusions on explicit requests.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type {
  IPAMAllocation,
  IPAMRange,
  IPAMRangeSpec,
  IPAMRangeStatus,
  IPAMRequest,
  IPAMRequestSpec,
  IPAMRequestStatus,
} from "../../src/api/types.ts";
import type { RangeUsageFigures } from "../../src/controllers/ports.ts";
import { fakeController } from "../harness/fake-ports.ts";
import { rangeObject, recordObject as record, requestObject } from "../harness/objects.ts";

const T0 = Date.parse("2026-12-01T07:00:00.000Z");

const range = (spec: IPAMRangeSpec, status?: IPAMRangeStatus) => rangeObject(spec, { status });
/** Requests here have no finalizer yet. */
const request = (name: string, spec: Partial<IPAMRequestSpec> = {}, status?: IPAMRequestStatus) =>
  requestObject(name, spec, status, { finalizers: [] });

/** Every write in order, as `kind detail`. */
function journal() {
  const writes: string[] = [];
  const statuses = new Map<string, IPAMRequestStatus>();
  return {
    writes,
    statuses,
    writer: {
      createAllocation: async (a: IPAMAllocation) => {
        writes.push(`create ${a.spec.cidr}`);
        return { ...a, metadata: { ...a.metadata, uid: `${a.spec.cidr}-uid` } };
      },
      deleteAllocation: async (_ns: string, name: string) => {
        writes.push(`delete ${name}`);
      },
      patchRangeStatus: async (_r: IPAMRange, status: IPAMRangeStatus) => {
        writes.push(`range cooling=${JSON.stringify(status.cooling ?? null)}`);
      },
      patchRequestStatus: async (r: IPAMRequest, status: IPAMRequestStatus) => {
        statuses.set(r.metadata.name ?? "", status);
        return r;
      },
    },
  };
}

describe("cooldowns in the controller", () => {
  it("writes status.cooling with the released block before its record is deleted", async () => {
    const gone = request("gone");
    const held = record("10.0.0.0/32", gone);
    const j = journal();
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/31"], reuseCooldownSeconds: 30 })], allocations: [held] },
      j.writer,
      { now: () => new Date(T0) },
    );
    controller.bootstrap();
    await controller.reconcileAllocation(`ns/${held.metadata.name}`);
    assert.deepEqual(j.writes, [
      'range cooling=["10.0.0.0/32@2026-12-01T07:00:30.000Z"]',
      `delete ${held.metadata.name}`,
    ]);
  });

  it("a failed announcement stops the delete; the block stays held", async () => {
    const gone = request("gone");
    const held = record("10.0.0.0/32", gone);
    const j = journal();
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/31"], reuseCooldownSeconds: 30 })], allocations: [held] },
      {
        ...j.writer,
        patchRangeStatus: async () => {
          throw Object.assign(new Error("etcd is down"), { status: 503 });
        },
      },
      { now: () => new Date(T0) },
    );
    controller.bootstrap();
    await assert.rejects(controller.reconcileAllocation(`ns/${held.metadata.name}`), /etcd is down/);
    assert.deepEqual(j.writes, []);
    assert.deepEqual(controller.snapshot().find((s) => s.range === "ns/r")?.held, ["10.0.0.0/32"]);
  });

  it("a request Busy only on cooling space is requeued for the end of the cooldown, then served", async () => {
    let now = T0;
    const a = request("a", { size: 32 }, { state: "Ready", cidr: "10.0.0.1/32" });
    const c = request("c", { size: 32 });
    const restored = { cooling: ["10.0.0.0/32@2026-12-01T07:00:30.000Z"] };
    const j = journal();
    const controller = fakeController(
      {
        ranges: [range({ ranges: ["10.0.0.0/31"], reuseCooldownSeconds: 30 }, restored)],
        requests: [a, c],
        allocations: [record("10.0.0.1/32", a)],
      },
      j.writer,
      { now: () => new Date(now) },
    );
    controller.bootstrap();
    now = T0 + 10_000;
    const result = await controller.reconcileRequest("ns/c");
    assert.deepEqual(result, { requeueAfter: 20_001 });
    assert.equal(
      j.statuses.get("c")?.message,
      "allocation with size 32 failed (space is cooling down until 2026-12-01T07:00:30.000Z)",
    );
    now = T0 + 30_000;
    await controller.reconcileRequest("ns/c");
    await controller.published();
    assert.equal(j.statuses.get("c")?.cidr, "10.0.0.0/32");
  });

  it("a status.cooling entry it cannot read costs only its own cooldown", async () => {
    const a = request("a", { size: 32 }, { state: "Ready", cidr: "10.0.0.2/32" });
    const c = request("c", { size: 32 });
    const restored = { cooling: ["10.0.0.0/31@junk", "10.0.0.0/32@2026-12-01T07:00:30.000Z", "x"] };
    const j = journal();
    const controller = fakeController(
      {
        ranges: [range({ ranges: ["10.0.0.0/30"], reuseCooldownSeconds: 30 }, restored)],
        requests: [a, c],
        allocations: [record("10.0.0.2/32", a)],
      },
      j.writer,
      { now: () => new Date(T0) },
    );
    controller.bootstrap();
    await controller.reconcileRequest("ns/c");
    await controller.published();
    // 10.0.0.0 still cools down; the unreadable entries block nothing.
    assert.equal(j.statuses.get("c")?.cidr, "10.0.0.1/32");
  });

  it("a claim whose request went before its record was written is freed at once, not cooled", async () => {
    const a = request("a", { size: 32 });
    const c = request("c", { size: 32 });
    const j = journal();
    let failCreate: (error: Error) => void = () => {};
    let createStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      createStarted = resolve;
    });
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/32"], reuseCooldownSeconds: 30 })], requests: [a, c] },
      {
        ...j.writer,
        // a's record create hangs: its block stays a claim in flight until the request is gone.
        createAllocation: (allocation) =>
          allocation.spec.request.name === "a"
            ? new Promise((_resolve, reject) => {
                failCreate = reject;
                createStarted();
              })
            : j.writer.createAllocation(allocation),
      },
      { now: () => new Date(T0) },
    );
    controller.bootstrap();
    const inFlight = controller.reconcileRequest("ns/a").catch(() => undefined);
    await started;
    assert.deepEqual(controller.snapshot().find((s) => s.range === "ns/r")?.held, ["10.0.0.0/32"]);
    controller.onRequestDelete(a);
    failCreate(new Error("connection reset"));
    await inFlight;
    await controller.reconcileRequest("ns/c");
    await controller.published();
    // Never published, so nobody can be using it: c gets it now, not after 30 s.
    assert.equal(j.statuses.get("c")?.cidr, "10.0.0.0/32");
  });

  it("an explicit request takes a cooling block at once", async () => {
    const restored = { cooling: ["10.0.0.0/32@2026-12-01T07:00:30.000Z"] };
    const j = journal();
    const controller = fakeController(
      {
        ranges: [range({ ranges: ["10.0.0.0/31"], reuseCooldownSeconds: 30 }, restored)],
        requests: [request("x", { request: "10.0.0.0" })],
      },
      j.writer,
      { now: () => new Date(T0) },
    );
    controller.bootstrap();
    await controller.reconcileRequest("ns/x");
    await controller.published();
    assert.equal(j.statuses.get("x")?.cidr, "10.0.0.0/32");
  });
});

describe("exclusions in the controller", () => {
  it("an explicit request over the gateway is Invalid and names it", async () => {
    const j = journal();
    const controller = fakeController(
      {
        ranges: [range({ ranges: ["10.0.0.0/30"], gateway: "10.0.0.1" })],
        requests: [request("gw", { request: "10.0.0.0/31" })],
      },
      j.writer,
    );
    controller.bootstrap();
    await controller.reconcileRequest("ns/gw");
    const status = j.statuses.get("gw");
    assert.equal(status?.state, "Invalid");
    assert.equal(status?.message, "10.0.0.0/31 overlaps excluded gateway 10.0.0.1");
    assert.deepEqual(j.writes, []);
  });
});

describe("usage metrics of the pool fields", () => {
  it("the range status write reports excluded and cooling addresses with size, allocated and free", async () => {
    const a = request("a", { size: 32 }, { state: "Ready", cidr: "10.0.0.4/32" });
    const restored = { cooling: ["10.0.0.2/31@2026-12-01T07:00:30.000Z"] };
    const spec = {
      ranges: ["10.0.0.0/29"],
      exclude: ["10.0.0.6/31"],
      gateway: "10.0.0.1",
      reuseCooldownSeconds: 30,
    };
    const reported: RangeUsageFigures[] = [];
    const controller = fakeController(
      { ranges: [range(spec, restored)], requests: [a], allocations: [record("10.0.0.4/32", a)] },
      journal().writer,
      {
        now: () => new Date(T0),
        metrics: {
          allocated: () => {},
          released: () => {},
          failed: () => {},
          rangeUsage: (pool, usage) => {
            assert.deepEqual(pool, { kind: "IPAMRange", namespace: "ns", name: "r" });
            reported.push(usage);
          },
          rangeGone: () => {},
        },
      },
    );
    controller.bootstrap();
    await controller.reconcileRange("ns/r");
    // 8 addresses: the gateway and 10.0.0.6/31 excluded (3), 10.0.0.2/31 cooling (2), one allocated,
    // 10.0.0.0 and 10.0.0.5 free.
    assert.deepEqual(reported.at(-1), { size: 8n, allocated: 1n, free: 2n, excluded: 3n, cooling: 2n });
  });
});
