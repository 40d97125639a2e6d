// The range reconciler: parses and validates the spec into the range's state, keeps kubipam's
// finalizer on the range while it exists, writes state and usage, and lets the range go once nothing
// refers to it. Watches: IPAMRange (spec, deletion, finalizers, someone else's status edits); queued
// also (debounced) when a range's usage changes and when a request or record of it goes, and when
// its next cooldown ends.

import { FINALIZER, type IPAMRange } from "../api/types.ts";
import { validateRangeSpec } from "../api/validation.ts";
import { reconcileWithFinalizer } from "../runtime/finalizers.ts";
import { objectKey, splitKey } from "../runtime/kube.ts";
import type { Context } from "./context.ts";
import { REQUESTS_BY_RANGE } from "./indexes.ts";
import type { PoolState } from "./pool-state.ts";
import { sameStrings } from "./status.ts";

/** How a range update concerns its reconciler: not at all, at once, or after the status delay. */
export function rangeChanged(range: IPAMRange, old: IPAMRange | undefined): "no" | "now" | "later" {
  if (
    !old ||
    old.metadata.generation !== range.metadata.generation ||
    old.metadata.deletionTimestamp !== range.metadata.deletionTimestamp ||
    !sameStrings(old.metadata.finalizers, range.metadata.finalizers) ||
    old.status?.state !== range.status?.state ||
    (old.status?.message ?? "") !== (range.status?.message ?? "")
  ) {
    return "now";
  }
  // Usage written by someone else (a user, or a writer that just lost the fence) is compared with
  // ours and corrected, with the same delay as our own usage writes (ours alone change nothing).
  const usage =
    old.status?.allocated !== range.status?.allocated ||
    old.status?.size !== range.status?.size ||
    !sameStrings(old.status?.roundRobin, range.status?.roundRobin);
  return usage ? "later" : "no";
}

export class RangeReconciler {
  constructor(
    private readonly c: Context,
    private readonly wake: (state: PoolState, all: boolean) => void,
  ) {}

  async reconcile(key: string): Promise<void> {
    const { d, ledger, status } = this.c;
    const range = d.ranges.get(key);
    const { namespace = "", name } = splitKey(key);
    const state = ledger.state(namespace, name);
    if (!range) {
      status.rangeGone(state);
      state.exists = false;
      state.spec = undefined;
      this.wake(state, true);
      ledger.forgetIfEmpty(state);
      return;
    }
    const changed = this.applySpec(range);
    // Listed only when needed: this runs after every batch of allocation changes (debounced), and a
    // range that holds blocks is referenced without looking at its requests.
    const requests = () => d.requests.byIndex(REQUESTS_BY_RANGE, key);
    const finalizer = {
      add: (r: IPAMRange) => d.writer.setRangeFinalizer(r, true),
      remove: (r: IPAMRange) => d.writer.setRangeFinalizer(r, false),
    };
    // The finalizer is on the range while it exists, so a block may be published the moment after it
    // appears; deletion waits until nothing refers to the range.
    await reconcileWithFinalizer(
      range,
      FINALIZER,
      finalizer,
      {
        apply: async () => {
          if (state.spec) this.buildAllocator(state);
          // Cooldowns that are due end (waking waiting requests); come back when the next one ends.
          const coolingEnds = ledger.expireCooling(state);
          if (coolingEnds !== undefined) {
            d.rangeQueue.addAfter(key, Math.max(coolingEnds - this.c.now().getTime(), 0) + 1);
          }
          await status.range(
            range,
            state,
            state.spec ? "Ready" : "Invalid",
            state.spec ? "" : state.invalidMessage,
          );
          if (!changed) return;
          // A spec edit is rare and user-made: revisit every request of the range (consent, pool
          // shrinking out from under a block, validity), not only the waiting ones.
          for (const request of requests()) d.requestQueue.add(objectKey(request));
          state.busy.clear();
        },
        cleanup: async () => {
          if (state.heldCount === 0 && requests().length === 0) return { done: true, result: undefined };
          await status.range(range, state, "Deleting", "waiting for pending requests to be deleted");
          this.wake(state, true);
          return { done: false, result: undefined };
        },
      },
      undefined,
    );
  }

  /** Applies the range's spec to its state; returns whether waiting requests may get through now. */
  applySpec(range: IPAMRange): boolean {
    const state = this.c.ledger.state(range.metadata.namespace ?? "", range.metadata.name ?? "");
    // Any spec change (consent, mode, size, pool) may let waiting requests through.
    const changed = !state.exists || state.generation !== range.metadata.generation;
    state.generation = range.metadata.generation;
    state.exists = true;
    state.uid = range.metadata.uid ?? "";
    state.deleting = Boolean(range.metadata.deletionTimestamp);
    const spec = validateRangeSpec(range.spec);
    if (!spec.ok) {
      const wasValid = state.spec !== undefined;
      state.spec = undefined;
      state.invalidate(spec.message);
      return wasValid || changed;
    }
    return state.configure(spec, range.status ?? {}) || changed;
  }

  buildAllocator(state: PoolState): void {
    this.c.ledger.allocator(state);
  }
}
