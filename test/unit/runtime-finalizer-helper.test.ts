// reconcileWithFinalizer: ensure → apply on a live object, cleanup → remove once done on deletion.

import assert from "node:assert/strict";
import { it } from "node:test";
import { reconcileWithFinalizer } from "../../src/runtime/finalizers.ts";
import type { KubeObject } from "../../src/runtime/kube.ts";

const F = "example.org/cleanup";

function run(obj: KubeObject, cleanupDone: boolean) {
  const calls: string[] = [];
  const ops = {
    add: async () => void calls.push("add"),
    remove: async () => void calls.push("remove"),
  };
  const result = reconcileWithFinalizer(
    obj,
    F,
    ops,
    {
      apply: async () => {
        calls.push("apply");
        return "applied";
      },
      cleanup: async () => {
        calls.push("cleanup");
        return { done: cleanupDone, result: "cleaned" };
      },
    },
    "idle",
  );
  return { calls, result };
}

const live = (finalizers?: string[]): KubeObject => ({
  metadata: { name: "x", ...(finalizers ? { finalizers } : {}) },
});
const deleting = (finalizers?: string[]): KubeObject => ({
  metadata: { name: "x", deletionTimestamp: "2026-12-01T00:00:00Z", ...(finalizers ? { finalizers } : {}) },
});

it("adds the finalizer before apply, once", async () => {
  const first = run(live(), false);
  assert.equal(await first.result, "applied");
  assert.deepEqual(first.calls, ["add", "apply"]);
  const again = run(live([F]), false);
  assert.equal(await again.result, "applied");
  assert.deepEqual(again.calls, ["apply"]);
});

it("on deletion runs cleanup, and removes the finalizer only when cleanup is done", async () => {
  const waiting = run(deleting([F]), false);
  assert.equal(await waiting.result, "cleaned");
  assert.deepEqual(waiting.calls, ["cleanup"]);
  const done = run(deleting([F]), true);
  assert.equal(await done.result, "cleaned");
  assert.deepEqual(done.calls, ["cleanup", "remove"]);
});

it("an object deleted without the finalizer needs nothing", async () => {
  const none = run(deleting(["other.org/x"]), true);
  assert.equal(await none.result, "idle");
  assert.deepEqual(none.calls, []);
});
