import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  findCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
} from "../../src/runtime/conditions.ts";
import { EventAggregator, eventKey, type KubeEvent, truncateUtf8 } from "../../src/runtime/events.ts";
import {
  ApiError,
  isAlreadyExists,
  isConflict,
  isForbidden,
  isGone,
  isNotFound,
  isTimeout,
  LineDecoder,
  objectKey,
  parseWatchEvent,
  RequestTimeoutError,
  splitKey,
} from "../../src/runtime/kube.ts";
import { Logger } from "../../src/runtime/logger.ts";
import { Backoff, formatMicroTime, formatTime } from "../../src/runtime/util.ts";

describe("conditions", () => {
  const t0 = new Date("2026-11-28T01:00:00.500Z");
  const t1 = new Date("2026-11-28T02:00:00Z");

  it("adds a condition with a whole-second transition time", () => {
    const c = setCondition(
      undefined,
      { type: "Ready", status: "False", reason: "Pending", observedGeneration: 1 },
      t0,
    );
    assert.deepEqual(c, [
      {
        type: "Ready",
        status: "False",
        reason: "Pending",
        message: "",
        lastTransitionTime: "2026-11-28T01:00:00Z",
        observedGeneration: 1,
      },
    ]);
  });

  it("keeps lastTransitionTime unless the status changes", () => {
    const a = setCondition([], { type: "Ready", status: "False", reason: "Pending", message: "m" }, t0);
    const b = setCondition(
      a,
      { type: "Ready", status: "False", reason: "Other", message: "n", observedGeneration: 2 },
      t1,
    );
    assert.equal(b[0]?.lastTransitionTime, "2026-11-28T01:00:00Z");
    assert.equal(b[0]?.reason, "Other");
    assert.equal(b[0]?.observedGeneration, 2);
    const c = setCondition(b, { type: "Ready", status: "True", reason: "Allocated" }, t1);
    assert.equal(c[0]?.lastTransitionTime, "2026-11-28T02:00:00Z");
    assert.equal(c[0]?.observedGeneration, 2, "observedGeneration is kept when not given");
    assert.equal(a[0]?.reason, "Pending", "the input is not modified");
  });

  it("finds, tests and removes conditions; other types are untouched", () => {
    let c = setCondition([], { type: "Ready", status: "True", reason: "R" }, t0);
    c = setCondition(c, { type: "Degraded", status: "False", reason: "D" }, t0);
    assert.equal(findCondition(c, "Degraded")?.reason, "D");
    assert.equal(isConditionTrue(c, "Ready"), true);
    assert.equal(isConditionTrue(c, "Degraded"), false);
    assert.equal(findCondition(c, "Missing"), undefined);
    assert.deepEqual(
      removeCondition(c, "Ready").map((x) => x.type),
      ["Degraded"],
    );
  });

  it("an unchanged condition yields an equal list", () => {
    const a = setCondition([], { type: "Ready", status: "True", reason: "R", message: "x" }, t0);
    const b = setCondition(a, { type: "Ready", status: "True", reason: "R", message: "x" }, t1);
    assert.deepEqual(b, a);
  });
});

describe("logger", () => {
  const now = () => new Date("2026-11-28T01:02:03.456Z");

  it("json: one object per line with ts, level, logger, msg and fields", () => {
    const lines: string[] = [];
    const log = new Logger({ format: "json", level: "info", name: "root", sink: (l) => lines.push(l), now });
    const child = log.child("ctrl", { controller: "ranges" });
    child.info("reconciled", { key: "ns/a", n: 3n, err: new Error("boom") });
    child.debug("hidden");
    assert.equal(lines.length, 1);
    assert.ok(lines[0]?.endsWith("\n"));
    const rec = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
    assert.deepEqual(rec, {
      ts: "2026-11-28T01:02:03.456Z",
      level: "info",
      logger: "root.ctrl",
      msg: "reconciled",
      controller: "ranges",
      key: "ns/a",
      n: "3",
      err: { name: "Error", message: "boom" },
    });
  });

  it("text: readable line with key=value fields, quoting when needed", () => {
    const lines: string[] = [];
    const log = new Logger({ format: "text", level: "debug", sink: (l) => lines.push(l), now, color: false });
    log.withName("a").withValues({ x: 1 }).warn("something odd", { why: "two words", ok: true });
    log.debug("dbg");
    assert.equal(lines[0], '2026-11-28T01:02:03.456Z WARN  a something odd x=1 why="two words" ok=true\n');
    assert.equal(lines[1], "2026-11-28T01:02:03.456Z DEBUG dbg\n");
  });

  it("levels filter and can change at run time", () => {
    const lines: string[] = [];
    const log = new Logger({ level: "warn", sink: (l) => lines.push(l), now });
    log.info("no");
    log.error("yes");
    log.setLevel("debug");
    log.debug("yes too");
    assert.equal(lines.length, 2);
    assert.equal(log.enabled("debug"), true);
  });

  it("never throws from a failing sink", () => {
    const log = new Logger({
      sink: () => {
        throw new Error("disk full");
      },
    });
    log.error("still fine");
  });
});

describe("watch stream decoding", () => {
  const ev = (type: string, name: string) =>
    JSON.stringify({ type, object: { metadata: { name, resourceVersion: "1" } } });

  it("splits lines across chunk boundaries", () => {
    const d = new LineDecoder();
    const text = `${ev("ADDED", "a")}\n${ev("MODIFIED", "b")}\n${ev("DELETED", "c")}\n`;
    const buf = Buffer.from(text);
    const out: string[] = [];
    for (let i = 0; i < buf.length; i += 7) out.push(...d.push(buf.subarray(i, i + 7)));
    out.push(...d.end());
    assert.deepEqual(
      out.map((l) => parseWatchEvent(l).type),
      ["ADDED", "MODIFIED", "DELETED"],
    );
  });

  it("keeps multi-byte characters split between chunks intact", () => {
    const d = new LineDecoder();
    const line = JSON.stringify({
      type: "ADDED",
      object: { metadata: { name: "x" }, data: { k: "naïve 🚀 ü" } },
    });
    const buf = Buffer.from(`${line}\n`);
    const out: string[] = [];
    for (let i = 0; i < buf.length; i++) out.push(...d.push(buf.subarray(i, i + 1)));
    assert.equal(out.length, 1);
    assert.equal(out[0], line);
  });

  it("handles several events in one chunk, blank lines and an unterminated last line", () => {
    const d = new LineDecoder();
    const out = d.push(`${ev("ADDED", "a")}\n\n${ev("ADDED", "b")}\n${ev("BOOKMARK", "")}`);
    assert.equal(out.length, 2);
    assert.deepEqual(
      d.end().map((l) => parseWatchEvent(l).type),
      ["BOOKMARK"],
    );
    assert.deepEqual(d.end(), []);
  });

  it("parses ERROR events into a Status and rejects malformed lines", () => {
    const e = parseWatchEvent(
      JSON.stringify({
        type: "ERROR",
        object: { kind: "Status", code: 410, reason: "Expired", message: "too old" },
      }),
    );
    assert.equal(e.type, "ERROR");
    if (e.type === "ERROR") {
      const err = ApiError.fromStatus(e.object);
      assert.equal(isGone(err), true);
      assert.equal(err.message, "too old");
    }
    assert.throws(() => parseWatchEvent("{}"));
    assert.throws(() => parseWatchEvent("not json"));
  });
});

describe("ApiError helpers", () => {
  it("classifies errors", () => {
    assert.equal(isNotFound(new ApiError({ status: 404 })), true);
    assert.equal(isConflict(new ApiError({ status: 409, reason: "Conflict" })), true);
    assert.equal(isConflict(new ApiError({ status: 409, reason: "AlreadyExists" })), false);
    assert.equal(isAlreadyExists(new ApiError({ status: 409, reason: "AlreadyExists" })), true);
    assert.equal(isGone(new ApiError({ status: 410 })), true);
    assert.equal(isForbidden(new ApiError({ status: 403 })), true);
    assert.equal(isTimeout(new RequestTimeoutError("t", 1)), true);
    assert.equal(isTimeout(new ApiError({ status: 504 })), true);
    assert.equal(isNotFound(new Error("x")), false);
    assert.equal(isNotFound(undefined), false);
    assert.equal(new ApiError({ status: 404 }).reason, "NotFound");
  });

  it("object keys", () => {
    assert.equal(objectKey({ metadata: { name: "a", namespace: "ns" } }), "ns/a");
    assert.equal(objectKey({ metadata: { name: "a" } }), "a");
    assert.deepEqual(splitKey("ns/a"), { namespace: "ns", name: "a" });
    assert.deepEqual(splitKey("a"), { namespace: undefined, name: "a" });
  });
});

describe("event aggregation", () => {
  const base = (note: string): KubeEvent => ({
    metadata: { namespace: "ns" },
    eventTime: formatMicroTime(),
    reportingController: "c",
    reportingInstance: "i",
    action: "Allocate",
    reason: "Allocated",
    note,
    type: "Normal",
    regarding: { kind: "Thing", namespace: "ns", name: "a", uid: "u1" },
  });

  it("counts identical events within the window into one series", () => {
    let now = 0;
    const agg = new EventAggregator(1_000, 10, () => now);
    const first = agg.observe(base("n"));
    assert.equal(first.isNew, true);
    const second = agg.observe(base("n"));
    assert.equal(second.isNew, false);
    assert.equal(second.entry, first.entry);
    assert.equal(second.entry.count, 2);
    assert.equal(agg.observe(base("other note")).isNew, true);
    now += 2_000;
    assert.equal(agg.observe(base("n")).isNew, true, "a new series after the window");
  });

  it("bounds the cache (least recently used entries go first)", () => {
    const agg = new EventAggregator(60_000, 3, () => 0);
    for (const n of ["a", "b", "c"]) agg.observe(base(n));
    agg.observe(base("a"));
    agg.observe(base("d"));
    assert.equal(agg.size, 3);
    assert.equal(agg.observe(base("a")).isNew, false);
    assert.equal(agg.observe(base("b")).isNew, true);
  });

  it("keys ignore time and differ by object, reason and note", () => {
    const a = base("n");
    const b = { ...base("n"), eventTime: "2000-01-01T00:00:00.000000Z" };
    assert.equal(eventKey(a), eventKey(b));
    assert.notEqual(eventKey(a), eventKey({ ...a, reason: "Other" }));
    assert.notEqual(eventKey(a), eventKey({ ...a, regarding: { ...a.regarding, name: "b" } }));
  });

  it("truncates notes to 1 kB without splitting characters", () => {
    const s = "ü".repeat(600);
    const t = truncateUtf8(s, 1024);
    assert.equal(Buffer.byteLength(t), 1024);
    assert.equal(truncateUtf8("€€", 4), "€");
    assert.equal(truncateUtf8("short", 1024), "short");
  });
});

describe("time formats and backoff", () => {
  it("MicroTime has six fractional digits; Time has whole seconds", () => {
    const d = new Date("2026-11-28T01:02:03.123Z");
    assert.equal(formatMicroTime(d), "2026-11-28T01:02:03.123000Z");
    assert.equal(formatTime(d), "2026-11-28T01:02:03Z");
    assert.match(formatMicroTime(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it("backoff grows with jitter up to the cap and resets", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1_000, factor: 2, jitter: 0.5 });
    const d = Array.from({ length: 6 }, () => b.next());
    assert.ok(d[0] !== undefined && d[0] >= 100 && d[0] <= 150);
    assert.ok(d[1] !== undefined && d[1] >= 200 && d[1] <= 300);
    assert.ok(d.every((x) => x <= 1_000));
    assert.equal(d[5], 1_000);
    b.reset();
    const r = b.next();
    assert.ok(r >= 100 && r <= 150);
  });
});
