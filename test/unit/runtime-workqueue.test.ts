import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Controller, TerminalError } from "../../src/runtime/controller.ts";
import { createRegistry } from "../../src/runtime/metrics.ts";
import {
  BucketRateLimiter,
  ExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  WorkQueue,
} from "../../src/runtime/workqueue.ts";

/** Resolves with the promise's value, or rejects after `ms` (a deadline, not a timing assertion). */
function within<T>(p: Promise<T>, ms = 5_000, what = "condition"): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}

async function waitFor(cond: () => boolean, ms = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const fastLimiter = () => new ExponentialFailureRateLimiter(1, 50);

describe("WorkQueue", () => {
  it("collapses duplicate keys and keeps FIFO order", async () => {
    const q = new WorkQueue({ rateLimiter: fastLimiter() });
    q.add("a");
    q.add("b");
    q.add("a");
    q.add("c");
    q.add("b");
    assert.equal(q.len(), 3);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
    assert.equal(await q.get(), "c");
    assert.equal(q.len(), 0);
  });

  it("never hands out a key that is being processed; a re-add runs again after done", async () => {
    const q = new WorkQueue({ rateLimiter: fastLimiter() });
    q.add("a");
    const k = await q.get();
    assert.equal(k, "a");
    q.add("a");
    q.add("a");
    assert.equal(q.len(), 0, "re-added key must wait while it is processed");
    q.add("b");
    assert.equal(await q.get(), "b");
    let second: string | undefined;
    const waiting = q.get().then((x) => {
      second = x;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(second, undefined);
    q.done("a");
    await within(waiting, 5_000, "re-queued key");
    assert.equal(second, "a");
    q.done("a");
    q.done("b");
    assert.equal(q.len(), 0);
  });

  it("wakes a waiting getter on add", async () => {
    const q = new WorkQueue({ rateLimiter: fastLimiter() });
    const p = q.get();
    q.add("x");
    assert.equal(await within(p), "x");
  });

  it("addAfter delivers later; the earlier of two delays wins", async () => {
    const q = new WorkQueue({ rateLimiter: fastLimiter() });
    q.addAfter("k", 60_000);
    q.addAfter("k", 20);
    assert.equal(q.len(), 0);
    assert.equal(q.waitingCount(), 1);
    assert.equal(await within(q.get(), 5_000, "delayed key"), "k");
    assert.equal(q.waitingCount(), 0);
    q.done("k");
    q.shutDown();
  });

  it("addAfter with a non-positive delay adds at once", () => {
    const q = new WorkQueue({ rateLimiter: fastLimiter() });
    q.addAfter("k", 0);
    assert.equal(q.len(), 1);
  });

  it("addRateLimited backs off per key; forget resets", async () => {
    const limiter = new ExponentialFailureRateLimiter(1, 10);
    const q = new WorkQueue({ rateLimiter: limiter });
    q.addRateLimited("k");
    q.addRateLimited("k");
    assert.equal(q.numRequeues("k"), 2);
    assert.equal(await within(q.get()), "k");
    q.done("k");
    q.forget("k");
    assert.equal(q.numRequeues("k"), 0);
  });

  it("shutDown: queued keys are still handed out, then get answers undefined; adds are ignored", async () => {
    const q = new WorkQueue({ rateLimiter: fastLimiter() });
    q.add("a");
    const waiter = new WorkQueue({ rateLimiter: fastLimiter() });
    const pending = waiter.get();
    waiter.shutDown();
    assert.equal(await within(pending), undefined);
    q.shutDown();
    q.add("b");
    q.addAfter("c", 1);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), undefined);
    assert.equal(q.waitingCount(), 0);
  });

  it("shutDownWithDrain waits for keys in processing", async () => {
    const q = new WorkQueue({ rateLimiter: fastLimiter() });
    q.add("a");
    const k = await q.get();
    assert.equal(k, "a");
    let drained = false;
    const d = q.shutDownWithDrain().then(() => {
      drained = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, false);
    q.done("a");
    await within(d);
    assert.equal(drained, true);
  });

  it("get with an aborted signal answers undefined", async () => {
    const q = new WorkQueue({ rateLimiter: fastLimiter() });
    const ac = new AbortController();
    const p = q.get(ac.signal);
    ac.abort();
    assert.equal(await within(p), undefined);
    q.add("a");
    assert.equal(await q.get(), "a", "an aborted getter must not swallow a key");
  });

  it("records metrics with controller-runtime names", async () => {
    const registry = createRegistry();
    const q = new WorkQueue({ name: "things", rateLimiter: fastLimiter(), registry });
    q.add("a");
    q.add("b");
    const k = await q.get();
    q.done(k ?? "");
    q.addRateLimited("a");
    const text = await registry.metrics();
    assert.match(text, /workqueue_depth\{name="things",controller="things"\} 1/);
    assert.match(text, /workqueue_adds_total\{name="things",controller="things"\} 2/);
    assert.match(text, /workqueue_retries_total\{name="things",controller="things"\} 1/);
    assert.match(text, /workqueue_queue_duration_seconds_count\{name="things",controller="things"\} 1/);
    assert.match(text, /workqueue_work_duration_seconds_count\{name="things",controller="things"\} 1/);
    assert.match(text, /workqueue_longest_running_processor_seconds\{name="things",controller="things"\}/);
    q.shutDown();
  });
});

describe("rate limiters", () => {
  it("exponential per-item backoff: 5 ms doubling up to 1000 s (client-go defaults)", () => {
    const l = new ExponentialFailureRateLimiter();
    const delays = Array.from({ length: 5 }, () => l.when("k"));
    assert.deepEqual(delays, [5, 10, 20, 40, 80]);
    assert.equal(l.when("other"), 5, "keys are independent");
    for (let i = 0; i < 100; i++) l.when("k");
    assert.equal(l.when("k"), 1_000_000);
    assert.equal(l.numRequeues("k"), 106);
    l.forget("k");
    assert.equal(l.when("k"), 5);
  });

  it("bucket limiter allows a burst, then spaces retries at qps", () => {
    let now = 0;
    const l = new BucketRateLimiter(10, 3, () => now);
    assert.deepEqual([l.when("a"), l.when("b"), l.when("c")], [0, 0, 0]);
    assert.equal(Math.round(l.when("d")), 100);
    assert.equal(Math.round(l.when("e")), 200);
    now += 1_000;
    assert.equal(l.when("f"), 0);
  });

  it("max-of takes the longest delay", () => {
    const l = new MaxOfRateLimiter(
      new ExponentialFailureRateLimiter(5, 1000),
      new ExponentialFailureRateLimiter(7, 1000),
    );
    assert.equal(l.when("k"), 7);
    assert.equal(l.when("k"), 14);
    assert.equal(l.numRequeues("k"), 2);
    l.forget("k");
    assert.equal(l.numRequeues("k"), 0);
  });
});

describe("Controller", () => {
  it("reconciles keys, retries errors with backoff, honours requeueAfter, never runs a key twice at once", async () => {
    const registry = createRegistry();
    const running = new Set<string>();
    let overlap = false;
    const calls = new Map<string, number>();
    const ac = new AbortController();
    const c = new Controller({
      name: "test",
      workers: 4,
      registry,
      rateLimiter: new ExponentialFailureRateLimiter(1, 20),
      reconcile: async (key) => {
        if (running.has(key)) overlap = true;
        running.add(key);
        try {
          await new Promise((r) => setImmediate(r));
          const n = (calls.get(key) ?? 0) + 1;
          calls.set(key, n);
          if (key === "flaky" && n < 3) throw new Error("transient");
          if (key === "later" && n === 1) return { requeueAfter: 10 };
          if (key === "terminal") throw new TerminalError("bad input");
          return undefined;
        } finally {
          running.delete(key);
        }
      },
    });
    const done = c.start(ac.signal);
    for (let i = 0; i < 20; i++) c.enqueue("busy");
    c.enqueue("flaky");
    c.enqueue("later");
    c.enqueue("terminal");
    await waitFor(
      () => calls.get("flaky") === 3 && calls.get("later") === 2 && (calls.get("busy") ?? 0) >= 1,
      10_000,
      "reconciles",
    );
    await waitFor(() => c.queue.len() === 0 && c.queue.processingCount() === 0, 5_000, "idle queue");
    assert.equal(overlap, false);
    assert.equal(calls.get("terminal"), 1, "terminal errors are not retried");
    assert.equal(c.queue.numRequeues("flaky"), 0, "success forgets the backoff");
    ac.abort();
    await within(done, 10_000, "controller stop");
    const text = await registry.metrics();
    assert.match(text, /controller_runtime_reconcile_total\{controller="test",result="error"\} 3/);
    assert.match(text, /controller_runtime_reconcile_total\{controller="test",result="requeue_after"\} 1/);
    assert.match(text, /controller_runtime_reconcile_errors_total\{controller="test"\} 3/);
    assert.match(text, /controller_runtime_reconcile_time_seconds_count\{controller="test"\} \d+/);
    assert.match(text, /controller_runtime_active_workers\{controller="test"\} 0/);
  });

  it("aborts a reconcile's signal after reconcileTimeoutMs and retries the key", async () => {
    const ac = new AbortController();
    let calls = 0;
    const c = new Controller({
      name: "slowpoke",
      registry: createRegistry(),
      rateLimiter: new ExponentialFailureRateLimiter(1, 10),
      reconcileTimeoutMs: 20,
      reconcile: async (_key, signal) => {
        calls++;
        if (calls > 1) return undefined;
        await new Promise<void>((resolve) =>
          signal.addEventListener("abort", () => resolve(), { once: true }),
        );
        throw signal.reason;
      },
    });
    const done = c.start(ac.signal);
    c.enqueue("k");
    await waitFor(() => calls === 2 && c.queue.processingCount() === 0, 5_000, "retry after the timeout");
    ac.abort();
    await within(done);
  });

  it("stop waits for in-flight reconciles and hands them the aborted signal", async () => {
    const ac = new AbortController();
    let started = false;
    let sawAbort = false;
    let finished = false;
    const c = new Controller({
      name: "stopper",
      registry: createRegistry(),
      reconcile: async (_key, signal) => {
        started = true;
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve();
          signal.addEventListener("abort", () => resolve(), { once: true });
        });
        sawAbort = signal.aborted;
        await new Promise((r) => setImmediate(r));
        finished = true;
      },
    });
    const done = c.start(ac.signal);
    c.enqueue("a");
    await waitFor(() => started, 5_000, "reconcile start");
    ac.abort();
    await within(done, 5_000, "controller stop");
    assert.equal(sawAbort, true);
    assert.equal(finished, true, "start() resolves only after the in-flight reconcile returned");
  });
});
