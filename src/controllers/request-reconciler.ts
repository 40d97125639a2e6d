// The request reconciler: validates a request against its range, claims a block (allocator → record
// → ledger), publishes it once the allocation fence is confirmed, and releases it on deletion. It
// returns an outcome (the status to write, a requeue) that the status writer applies; claims go to
// the publisher (publisher.ts), which confirms the fence once per batch. Watches:
// IPAMRequest (creation, deletion, status.cidr, someone else's status edits); queued also when space
// in its range is freed or the range changes.

import { describePool, poolKey } from "../api/pool-ref.ts";
import { FINALIZER, type IPAMRequest, type RangeObject } from "../api/types.ts";
import { isInvalid, rangeRefOf } from "../api/validation.ts";
import { type Allocator, type Cidr, IpamError, parseRequest, type RequestPlan } from "../ipam/index.ts";
import type { ReconcileResult } from "../runtime/controller.ts";
import { hasFinalizer } from "../runtime/finalizers.ts";
import { objectKey, splitKey } from "../runtime/kube.ts";
import { type Adoption, excludedEntry } from "./adoption.ts";
import { admits, notAdmittedMessage } from "./consent.ts";
import { type Context, missingRangeMessage, rangeObject } from "./context.ts";
import { announceRelease } from "./cooling-state.ts";
import { ownRecordsOf } from "./foreign-records.ts";
import type { HeldBlock, PoolState } from "./pool-state.ts";
import { statusOf } from "./ports.ts";
import type { Publisher } from "./publisher.ts";
import type { Records } from "./records.ts";
import { errorMessage, type RequestStatusOutcome } from "./status.ts";

const MAX_COLLISIONS = 64;
/** Retry delay while an overlapping record is being resolved by garbage collection. */
const CONTESTED_MS = 250;
/** A requeue that is contention or a changed object, not a failure: soon, without backoff. */
const AGAIN_MS = 50;

/** What one reconcile decided: the status to write and when to look again. */
export interface Outcome {
  status?: RequestStatusOutcome;
  requeueAfter?: number;
}

const says = (state: RequestStatusOutcome["state"], message: string): Outcome => ({
  status: { state, message },
});

/** Whether a request update may need a reconcile (our own finalizer patches and statuses do not). */
export function requestChanged(request: IPAMRequest, old: IPAMRequest | undefined): boolean {
  if (!old) return true;
  return (
    old.metadata.generation !== request.metadata.generation ||
    old.metadata.deletionTimestamp !== request.metadata.deletionTimestamp ||
    (old.status?.cidr ?? "") !== (request.status?.cidr ?? "") ||
    (hasFinalizer(old, FINALIZER) && !hasFinalizer(request, FINALIZER)) ||
    // A status we never write (someone else's edit): write ours again.
    (request.status?.cidr ? request.status.state !== "Ready" : request.status?.state === "Ready")
  );
}

export class RequestReconciler {
  constructor(
    private readonly c: Context,
    private readonly records: Records,
    private readonly adoption: Adoption,
    private readonly publisher: Publisher,
  ) {}

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const request = this.c.d.requests.get(key);
    if (!request) return undefined;
    try {
      const outcome = await this.decide(request);
      if (outcome?.status) await this.c.status.request(request, outcome.status);
      return outcome?.requeueAfter ? { requeueAfter: outcome.requeueAfter } : undefined;
    } catch (err) {
      // A write the API server refused (a missing RBAC permission, a rejected object): say so on the
      // request too; the error still goes to the log and the retry backoff.
      const status = statusOf(err);
      if (status === 403 || status === 400 || status === 422) await this.c.status.rejected(request, err);
      throw err;
    }
  }

  private async decide(request: IPAMRequest): Promise<Outcome | undefined> {
    if (request.metadata.deletionTimestamp) return this.finalize(request);
    const ref = rangeRefOf(request);
    const cidrText = request.status?.cidr;
    if (cidrText) return this.adoption.keep(request, ref, cidrText);
    if (isInvalid(ref)) return says("Invalid", ref.message);

    const { d, ledger } = this.c;
    const key = objectKey(request);
    const pool = describePool(ref);
    const range = rangeObject(d, ref);
    const state = ledger.state(ref);
    state.busy.delete(key);
    if (!range) return says("Invalid", missingRangeMessage(d, ref));
    if (!admits(d, ref, range, request.metadata.namespace ?? "")) {
      return says("Invalid", notAdmittedMessage(ref, request.metadata.namespace));
    }
    if (!state.spec) return says("Invalid", `${pool} not valid: ${state.invalidMessage}`);
    if (range.metadata.deletionTimestamp) return says("Invalid", `${pool} is being deleted`);
    const allocator = ledger.allocator(state);
    // Cooldowns that are due end now (and wake the range's other waiting requests).
    ledger.expireCooling(state);
    if (state.spec.family === undefined || !allocator) {
      state.busy.add(key);
      return says("Busy", "the range is empty");
    }
    let plan: RequestPlan;
    try {
      plan = parseRequest(
        { size: request.spec.size, request: request.spec.request },
        state.spec.family,
        state.spec.chunkSize || undefined,
      );
    } catch (err) {
      return says("Invalid", errorMessage(err));
    }
    return this.allocate(request, range, state, plan, allocator);
  }

  private async allocate(
    request: IPAMRequest,
    range: RangeObject,
    state: PoolState,
    plan: RequestPlan,
    allocator: Allocator,
  ): Promise<Outcome | undefined> {
    const { d, ledger } = this.c;
    // The range must be protected before any of its blocks is published (deletion then waits).
    if (!hasFinalizer(range, FINALIZER)) await d.writer.setRangeFinalizer(range, true);
    // The publish is conditional on this version: a version seen before the fence was confirmed. No
    // finalizer on the request: its record is the durable trace of the block, collected once the
    // request is gone (allocation-gc.ts), also when it went while no controller ran.
    const version = request.metadata.resourceVersion;
    // A block this request already holds: an earlier attempt of ours, or a record naming it that a
    // previous fence holder (or someone else) wrote. It becomes the request's block only if it fits.
    const existing = ledger
      .blocksOf(request.metadata.uid ?? "")
      .find((b) => ledger.stateForBlock(b) === state);
    if (existing && !fitsPlan(existing.cidr, plan, allocator)) {
      await this.records.revoke(request, state, existing, `${existing.cidr} does not match the request`);
      return { requeueAfter: AGAIN_MS };
    }
    const claimed = existing ?? (await this.claim(request, range, state, plan, allocator));
    if (!("requestUid" in claimed)) return claimed;
    return this.publish(request, state, claimed, version);
  }

  /** Allocates a block for the request and creates its record; or says why not. */
  private async claim(
    request: IPAMRequest,
    range: RangeObject,
    state: PoolState,
    plan: RequestPlan,
    allocator: Allocator,
  ): Promise<HeldBlock | Outcome> {
    const key = objectKey(request);
    for (let attempt = 0; attempt < MAX_COLLISIONS; attempt++) {
      const cidr = this.take(state, key, plan, allocator);
      if (!("prefix" in cidr)) return cidr;
      const holder = { uid: request.metadata.uid ?? "", key };
      const block = await this.records.claim(range, state, holder, cidr);
      if (block) return block;
      // Someone else holds it (another process, or a block this cache has not seen yet): it stays
      // marked, attributed to its holder; try the next one. A dedicated block cannot move on.
      if (plan.kind !== "size") {
        state.busy.add(key);
        return says("Busy", `${cidr} already busy`);
      }
    }
    // Another writer is far ahead of this cache; what was learnt stays in the ledger. Try again soon
    // without growing the error backoff: this is contention, not failure.
    this.c.d.log.info("blocks taken by other writers; retrying", { range: state.key, request: key });
    return { requeueAfter: 100 };
  }

  /** The block the plan gets from the allocator (marked there), or why there is none. */
  private take(state: PoolState, key: string, plan: RequestPlan, allocator: Allocator): Cidr | Outcome {
    try {
      if (plan.kind === "size") return allocator.allocate(plan.size);
      if (plan.kind === "indexed") return allocator.allocateIndexed(plan.index, plan.size);
      allocator.reserve(plan.cidr);
      return plan.cidr;
    } catch (err) {
      const busy = err instanceof IpamError && err.code === "Busy";
      if (busy) state.busy.add(key);
      this.c.d.metrics.failed(state.ref, busy ? "busy" : "invalid");
      const outcome = says(busy ? "Busy" : "Invalid", errorMessage(err));
      // Busy only because of cooling space: look again when it ends (the message says when).
      const until = err instanceof IpamError ? err.coolingUntil : undefined;
      if (until !== undefined) outcome.requeueAfter = Math.max(until - this.c.now().getTime(), 0) + 1;
      return outcome;
    }
  }

  /** Hands a claim to the publisher once its record is known to exist. */
  private async publish(
    request: IPAMRequest,
    state: PoolState,
    block: HeldBlock,
    version: string | undefined,
  ): Promise<Outcome | undefined> {
    if (block.phase === "claiming" && !(await this.confirmRecord(request, state, block))) {
      return { requeueAfter: AGAIN_MS };
    }
    // A record that lost an overlap with this block is not resolved yet: it may still be published by
    // a writer that confirmed it before this term (garbage collection revokes it first).
    if (state.isContested(block.cidr)) return { requeueAfter: CONTESTED_MS };
    this.publisher.submit({ request, state, block, version });
    return undefined;
  }

  /** A claim left over from an attempt with an unknown outcome: is its record there, and ours? */
  private async confirmRecord(request: IPAMRequest, state: PoolState, block: HeldBlock): Promise<boolean> {
    const existing = await this.c.d.writer.getAllocation(state.recordNamespace, block.objectName);
    if (existing && existing.spec.request.uid !== block.requestUid) {
      this.records.foreign(state, block, existing);
      return false;
    }
    if (!existing) {
      // Its record is gone (deleted by hand, or never created): a publication of it may still be on
      // its way, so the request is written first, then the block goes.
      await this.records.revoke(request, state, block, `the record of ${block.cidr} is gone`);
      return false;
    }
    block.phase = "held";
    block.objectUid = existing.metadata.uid;
    return true;
  }

  /** Extra blocks of a request that lost a race: their objects go, via garbage collection. */
  dropExtras(request: IPAMRequest, cidr: string): void {
    for (const block of this.c.ledger.blocksOf(request.metadata.uid ?? "")) {
      if (block.cidr.toString() === cidr) continue;
      const state = this.c.ledger.stateForBlock(block);
      if (state) this.c.d.allocationQueue.add(state.recordKey(block.objectName));
    }
  }

  /**
   * A request being deleted that still carries the finalizer of the original kubipam or an older
   * kubipam: free every block of it, then let it go.
   */
  private async finalize(request: IPAMRequest): Promise<undefined> {
    const { d, ledger } = this.c;
    const uid = request.metadata.uid ?? "";
    for (const block of ledger.blocksOf(uid)) {
      const state = ledger.stateForBlock(block);
      if (state) await announceRelease(this.c, state, block.cidr);
    }
    for (const [key, objectUid] of this.recordsOf(uid)) {
      const { namespace = "", name } = splitKey(key);
      await d.writer.deleteAllocation(namespace, name, objectUid);
    }
    for (const block of ledger.blocksOf(uid)) {
      const state = ledger.stateForBlock(block);
      if (state) ledger.release(state, block);
    }
    if (hasFinalizer(request, FINALIZER)) await d.writer.setRequestFinalizer(request, false);
    const ref = rangeRefOf(request);
    if (!isInvalid(ref)) d.rangeQueue.add(poolKey(ref));
    return undefined;
  }

  /** Records of a request (`namespace/name` → object uid): in the cache, and claims in the ledger. */
  private recordsOf(uid: string): Map<string, string> {
    const { ledger } = this.c;
    const names = new Map<string, string>();
    for (const a of ownRecordsOf(this.c, uid)) names.set(objectKey(a), a.metadata.uid ?? "");
    for (const block of ledger.blocksOf(uid)) {
      const state = ledger.stateForBlock(block);
      // A claim without a known record is released below; deleting by name alone could hit a record
      // that someone else holds under that name now.
      const key = state && block.objectUid && state.recordKey(block.objectName);
      if (key && !names.has(key)) names.set(key, block.objectUid ?? "");
    }
    return names;
  }
}

/** Whether a block someone else recorded for a request is what the request asks for. */
function fitsPlan(cidr: Cidr, plan: RequestPlan, allocator: Allocator): boolean {
  if (!allocator.contains(cidr) || excludedEntry(allocator, cidr) !== undefined) return false;
  if (plan.kind === "block") return cidr.equals(plan.cidr);
  return cidr.prefix === plan.size;
}
