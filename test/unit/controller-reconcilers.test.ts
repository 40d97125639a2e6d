// The reconcilers' decisions, without a cluster: the ports are faked (test/harness/fake-ports.ts), so
// each branch the integration tests reach only slowly is one fast, deterministic case.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMAllocation, IPAMRange, IPAMRangeSpec, IPAMRequestStatus } from "../../src/api/types.ts";
import { allocationName } from "../../src/api/validation.ts";
import type { IpamController } from "../../src/controllers/ipam-controller.ts";
import type { IpamWriter } from "../../src/controllers/ports.ts";
import type { ReconcileResult } from "../../src/runtime/controller.ts";
import { fakeController } from "../harness/fake-ports.ts";
import { rangeObject, recordObject as record, requestObject as request } from "../harness/objects.ts";

const range = (spec: IPAMRangeSpec, metadata: Partial<IPAMRange["metadata"]> = {}) =>
  rangeObject(spec, { metadata });

/** A writer that records what it was asked to write; creates succeed with a uid. */
function recordingWriter(overrides: Partial<IpamWriter> = {}) {
  const statuses: { name: string; status: IPAMRequestStatus; version?: string }[] = [];
  const deleted: string[] = [];
  const writer: Partial<IpamWriter> = {
    createAllocation: async (a) => ({ ...a, metadata: { ...a.metadata, uid: `${a.spec.cidr}-uid` } }),
    patchRequestStatus: async (r, status, version) => {
      statuses.push({ name: r.metadata.name ?? "", status, ...(version ? { version } : {}) });
      return r;
    },
    deleteAllocation: async (_ns, name) => {
      deleted.push(name);
    },
    ...overrides,
  };
  const last = (name: string) => statuses.filter((s) => s.name === name).at(-1)?.status;
  return { writer, statuses, deleted, last };
}

/** One request reconcile, and the publication it handed over. */
async function reconcile(controller: IpamController, key: string): Promise<ReconcileResult | undefined> {
  const result = await controller.reconcileRequest(key);
  await controller.published();
  return result;
}

const reason = (s: IPAMRequestStatus | undefined) => s?.conditions?.find((c) => c.type === "Ready")?.reason;

describe("request reconciler", () => {
  it("publishes the first free block, conditional on the request's version", async () => {
    const a = request("a", { size: 31 });
    const w = recordingWriter();
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/30"] })], requests: [a] },
      w.writer,
    );
    controller.bootstrap();
    await reconcile(controller, "ns/a");
    assert.equal(w.last("a")?.cidr, "10.0.0.0/31");
    assert.equal(reason(w.last("a")), "Allocated");
    assert.equal(w.statuses.at(-1)?.version, "7");
  });

  it("an Allocated event per allocation at low priority, or none with allocationEvents false", async () => {
    for (const allocationEvents of [true, false]) {
      const emitted: { reason: string; priority?: string }[] = [];
      const w = recordingWriter();
      const controller = fakeController(
        { ranges: [range({ ranges: ["10.0.0.0/30"] })], requests: [request("a")] },
        w.writer,
        {
          allocationEvents,
          events: {
            emit: (_o, _t, reason, _n, priority) =>
              void emitted.push({ reason, ...(priority ? { priority } : {}) }),
          },
        },
      );
      controller.bootstrap();
      await reconcile(controller, "ns/a");
      assert.equal(w.last("a")?.state, "Ready");
      assert.deepEqual(emitted, allocationEvents ? [{ reason: "Allocated", priority: "low" }] : []);
    }
  });

  it("busy, then woken and served when space is freed", async () => {
    const a = request("a", { size: 31 });
    const b = request("b", { size: 31 });
    const woken: string[] = [];
    const allocations: IPAMAllocation[] = [];
    const w = recordingWriter({
      createAllocation: async (x) => {
        const created = { ...x, metadata: { ...x.metadata, uid: `${x.spec.cidr}-uid` } };
        allocations.push(created); // as the watch would bring it
        return created;
      },
    });
    const requests = [a, b];
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/31"] })], requests, allocations },
      w.writer,
      { requestQueue: { add: (k) => woken.push(k), addAfter: () => {} } },
    );
    controller.bootstrap();
    woken.length = 0;
    await reconcile(controller, "ns/a");
    await reconcile(controller, "ns/b");
    assert.equal(w.last("b")?.state, "Busy");
    assert.equal(w.last("b")?.message, "allocation with size 31 failed");
    assert.equal(reason(w.last("b")), "NoSpace");
    // a goes: its record is collected (the live read finds no request), the block freed, b woken.
    requests.splice(requests.indexOf(a), 1);
    controller.onRequestDelete(a);
    await controller.reconcileAllocation(`ns/${allocationName("r", "10.0.0.0/31")}`);
    assert.ok(woken.includes("ns/b"));
    await reconcile(controller, "ns/b");
    assert.equal(w.last("b")?.cidr, "10.0.0.0/31");
  });

  it("a record deleted while its request waits to be published is revoked before its block goes", async () => {
    const a = request("a", { size: 31 });
    const b = request("b", { size: 31 });
    const queued: string[] = [];
    let records: IPAMAllocation[] = [];
    const w = recordingWriter({
      createAllocation: async (x) => {
        const created = { ...x, metadata: { ...x.metadata, uid: `${x.spec.cidr}-uid` } };
        records.push(created);
        return created;
      },
      getAllocation: async (_ns, name) => records.find((r) => r.metadata.name === name),
    });
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/31"] })], requests: [a, b] },
      w.writer,
      {
        fence: { confirm: async () => false },
        requestQueue: { add: (k) => queued.push(k), addAfter: () => {} },
      },
    );
    controller.bootstrap();
    await reconcile(controller, "ns/a"); // claimed and recorded; not published (no fence)
    const recorded = records[0];
    assert.ok(recorded);
    records = [];
    queued.length = 0;
    controller.onAllocationDelete(recorded);
    assert.deepEqual(queued, ["ns/a"], "the request decides, not the handler");
    assert.deepEqual(
      controller.snapshot().find((s) => s.range === "ns/r")?.held,
      ["10.0.0.0/31"],
      "still held",
    );
    await reconcile(controller, "ns/a");
    const revoke = w.statuses.find((x) => x.name === "a");
    assert.match(revoke?.status.message ?? "", /^reallocating: the record of 10.0.0.0\/31 is gone/);
    assert.equal(revoke?.version, "7");
    assert.deepEqual(
      controller.snapshot().find((s) => s.range === "ns/r")?.held,
      [],
      "released after the revocation",
    );
  });

  it("a block held by another writer is recorded as theirs and the next one is taken", async () => {
    const a = request("a", { size: 32 });
    const other = request("other");
    const theirs = record("10.0.0.0/32", other);
    const w = recordingWriter({
      createAllocation: async (x) => {
        if (x.spec.cidr === "10.0.0.0/32") throw Object.assign(new Error("exists"), { status: 409 });
        return { ...x, metadata: { ...x.metadata, uid: "mine" } };
      },
      getAllocation: async (_ns, name) => (name === theirs.metadata.name ? theirs : undefined),
    });
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/30"] })], requests: [a], allocations: [] },
      w.writer,
      // The cache has their object too (the read is not older than the watch).
      {
        allocations: {
          get: (k) => (k === `ns/${theirs.metadata.name}` ? theirs : undefined),
          list: () => [],
          byIndex: () => [],
        },
      },
    );
    controller.bootstrap();
    await reconcile(controller, "ns/a");
    assert.equal(w.last("a")?.cidr, "10.0.0.1/32");
    const held = controller
      .snapshot()
      .find((s) => s.range === "ns/r")
      ?.held.sort();
    assert.deepEqual(held, ["10.0.0.0/32", "10.0.0.1/32"]);
  });

  it("publishes nothing while the fence is not held, and asks to be requeued", async () => {
    const a = request("a");
    const w = recordingWriter();
    const later: string[] = [];
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/30"] })], requests: [a] },
      w.writer,
      {
        fence: { confirm: async () => false },
        requestQueue: { add: () => {}, addAfter: (key, ms) => void later.push(`${key} ${ms}`) },
      },
    );
    controller.bootstrap();
    await reconcile(controller, "ns/a");
    assert.equal(w.last("a"), undefined);
    assert.deepEqual(later, ["ns/a 1000"]);
  });

  it("one fence confirmation covers every publication waiting at the time", async () => {
    const names = ["a", "b", "c", "d"];
    const w = recordingWriter();
    let confirms = 0;
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/29"] })], requests: names.map((n) => request(n)) },
      w.writer,
      { fence: { confirm: async () => ++confirms > 0 } },
    );
    controller.bootstrap();
    await Promise.all(names.map((n) => controller.reconcileRequest(`ns/${n}`)));
    await controller.published();
    assert.deepEqual(
      names.map((n) => w.last(n)?.state),
      ["Ready", "Ready", "Ready", "Ready"],
    );
    assert.ok(confirms <= 2, `${confirms} confirmations for 4 publications`);
  });

  it("a forbidden write is reported on the request (reason Forbidden)", async () => {
    const a = request("a");
    const w = recordingWriter({
      createAllocation: async () => {
        throw Object.assign(new Error('ipamallocations is forbidden: cannot "create"'), { status: 403 });
      },
    });
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/30"] })], requests: [a] },
      w.writer,
    );
    controller.bootstrap();
    await assert.rejects(controller.reconcileRequest("ns/a"), /forbidden/);
    assert.match(w.last("a")?.message ?? "", /^forbidden: /);
    assert.equal(reason(w.last("a")), "Forbidden");
  });

  it("a rejected write is reported on the request (reason Rejected)", async () => {
    const a = request("a");
    const w = recordingWriter({
      createAllocation: async () => {
        throw Object.assign(new Error("metadata.labels: Invalid value"), { status: 422 });
      },
    });
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/30"] })], requests: [a] },
      w.writer,
    );
    controller.bootstrap();
    await assert.rejects(controller.reconcileRequest("ns/a"));
    assert.equal(w.last("a")?.message, "rejected by the API server: metadata.labels: Invalid value");
    assert.equal(reason(w.last("a")), "Rejected");
  });

  it("a range being deleted hands out nothing", async () => {
    const a = request("a");
    const w = recordingWriter();
    const deleting = range({ ranges: ["10.0.0.0/30"] }, { deletionTimestamp: "2026-12-01T00:00:00Z" });
    const controller = fakeController({ ranges: [deleting], requests: [a] }, w.writer);
    controller.bootstrap();
    await reconcile(controller, "ns/a");
    assert.equal(w.last("a")?.state, "Invalid");
    assert.equal(w.last("a")?.message, "IPAMRange ns/r is being deleted");
  });

  it("a shrunk range keeps the block and says so (InRange=False)", async () => {
    const a = request("a", {}, { state: "Ready", cidr: "10.0.0.3/32" });
    const w = recordingWriter();
    const controller = fakeController(
      {
        ranges: [range({ ranges: ["10.0.0.0/31"] })],
        requests: [a],
        allocations: [record("10.0.0.3/32", a)],
      },
      w.writer,
    );
    controller.bootstrap();
    await reconcile(controller, "ns/a");
    const status = w.last("a");
    assert.equal(status?.state, "Ready");
    assert.match(status?.message ?? "", /no longer inside IPAMRange ns\/r/);
    assert.equal(status?.conditions?.find((c) => c.type === "InRange")?.status, "False");
  });

  it("a record naming a waiting request that does not fit it is revoked before it goes", async () => {
    const a = request("a", { size: 28 });
    const forged = record("10.0.0.0/24", a);
    const w = recordingWriter();
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/24"] })], requests: [a], allocations: [forged] },
      w.writer,
    );
    controller.bootstrap();
    await reconcile(controller, "ns/a");
    const revoke = w.statuses.find((s) => s.name === "a");
    assert.match(revoke?.status.message ?? "", /^reallocating: 10.0.0.0\/24 does not match the request/);
    assert.equal(revoke?.version, "7", "the revocation is conditional on the version without a cidr");
    assert.deepEqual(w.deleted, [forged.metadata.name]);
  });
});

describe("nothing leaks", () => {
  it("a claim whose record's fate is unknown is released when its request goes", async () => {
    const a = request("a");
    const unknown = () => Promise.reject(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" }));
    const w = recordingWriter({ createAllocation: unknown, getAllocation: unknown });
    const requests = [a];
    const controller = fakeController({ ranges: [range({ ranges: ["10.0.0.0/30"] })], requests }, w.writer);
    controller.bootstrap();
    await assert.rejects(controller.reconcileRequest("ns/a"), /timeout/);
    const held = () => controller.snapshot().find((s) => s.range === "ns/r")?.held;
    assert.deepEqual(held(), ["10.0.0.0/32"], "kept while the outcome is unknown");
    requests.splice(0, 1);
    controller.onRequestDelete(a);
    assert.deepEqual(held(), [], "released with its request");
  });
});

describe("records that lose an overlap at start-up", () => {
  it("a forged record over a published block is never published; it is revoked and collected", async () => {
    const r1 = request("r1", { size: 28 }, { state: "Ready", cidr: "10.0.0.0/28" });
    const r3 = request("r3", { request: "10.0.0.0/24" });
    const real = record("10.0.0.0/28", r1);
    const forged = record("10.0.0.0/24", r3);
    const w = recordingWriter({ getRequest: async (_ns, name) => (name === "r3" ? r3 : r1) });
    const controller = fakeController(
      // The forgery is listed first: precedence, not list order, decides.
      { ranges: [range({ ranges: ["10.0.0.0/24"] })], requests: [r1, r3], allocations: [forged, real] },
      w.writer,
    );
    controller.bootstrap();
    assert.deepEqual(controller.snapshot().find((s) => s.range === "ns/r")?.held, ["10.0.0.0/28"]);
    await reconcile(controller, "ns/r3");
    assert.equal(w.last("r3")?.state, "Busy");
    assert.equal(w.last("r3")?.cidr, undefined);
    await controller.reconcileAllocation(`ns/${forged.metadata.name}`);
    assert.match(w.last("r3")?.message ?? "", /^reallocating: the record .* overlaps another block/);
    assert.deepEqual(w.deleted, [forged.metadata.name]);
  });
});

describe("allocation garbage collection", () => {
  it("collects a record whose request is gone", async () => {
    const gone = request("gone");
    const orphan = record("10.0.0.0/32", gone);
    const w = recordingWriter({ getRequest: async () => undefined });
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/30"] })], allocations: [orphan] },
      w.writer,
    );
    controller.bootstrap();
    await controller.reconcileAllocation(`ns/${orphan.metadata.name}`);
    assert.deepEqual(w.deleted, [orphan.metadata.name]);
    assert.deepEqual(controller.snapshot().find((s) => s.range === "ns/r")?.held ?? [], []);
  });

  it("keeps the record of a published holder, even when marked for deletion", async () => {
    const a = request("a", {}, { state: "Ready", cidr: "10.0.0.0/32" });
    const marked = {
      ...record("10.0.0.0/32", a),
      metadata: { ...record("10.0.0.0/32", a).metadata, deletionTimestamp: "2026-12-01T00:00:00Z" },
    };
    const w = recordingWriter({ getRequest: async () => a });
    const controller = fakeController(
      { ranges: [range({ ranges: ["10.0.0.0/30"] })], requests: [a], allocations: [marked] },
      w.writer,
    );
    controller.bootstrap();
    await controller.reconcileAllocation(`ns/${marked.metadata.name}`);
    assert.deepEqual(w.deleted, []);
  });
});
