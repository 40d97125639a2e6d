// The IPAM reconcilers: ranges, requests and the garbage collection of allocation objects.
//
// Safety rests on the API server, not on this process's memory:
// - every allocated block has an IPAMAllocation object named by range and block, created before the
//   request's status.cidr is written, so two writers claiming one block collide (AlreadyExists);
// - a CEL rule makes status.cidr unchangeable once set, so two writers serving one request cannot
//   both win; the loser deletes its allocation object.
// The in-memory ledger and allocator are a fast index over those objects.

import {
  ALLOCATION_FINALIZER,
  API_VERSION,
  FINALIZER,
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRangeStatus,
  type IPAMRequest,
  type IPAMRequestStatus,
  RANGE_LABEL,
  type RequestState,
} from "../api/types.ts";
import {
  admitsNamespace,
  allocationName,
  type InvalidSpec,
  isInvalid,
  type RangeRef,
  rangeLabelValue,
  rangeRefOf,
  validateRangeSpec,
} from "../api/validation.ts";
import { type Allocator, Cidr, IpamError, parseRequest, type RequestPlan } from "../ipam/index.ts";
import { conditionsEqual, setCondition } from "../runtime/conditions.ts";
import { objectKey, splitKey } from "../runtime/kube.ts";
import type { Cache, EventSink, Fence, IpamMetrics, IpamWriter, Log, Queue } from "./ports.ts";
import { statusOf } from "./ports.ts";
import { type HeldBlock, parseHeldCidr, RangeState } from "./range-state.ts";

/** Index of requests by the `namespace/name` of the range they name. */
export const REQUESTS_BY_RANGE = "range";
/** Index of allocation objects by the uid of the request holding them. */
export const ALLOCATIONS_BY_REQUEST = "request";

export function requestRangeIndex(request: IPAMRequest): string[] {
  const ref = rangeRefOf(request);
  return isInvalid(ref) ? [] : [`${ref.namespace}/${ref.name}`];
}

export function allocationRequestIndex(allocation: IPAMAllocation): string[] {
  const uid = allocation.spec?.request?.uid;
  return uid ? [uid] : [];
}

export interface IpamControllerDeps {
  ranges: Cache<IPAMRange>;
  requests: Cache<IPAMRequest>;
  allocations: Cache<IPAMAllocation>;
  rangeQueue: Queue;
  requestQueue: Queue;
  allocationQueue: Queue;
  writer: IpamWriter;
  /** Nothing is published unless a confirm that started after the block's record was created succeeded. */
  fence: Fence;
  events: EventSink;
  metrics: IpamMetrics;
  log: Log;
  /** Delay before a range's status (usage, cursors) is written after allocations change. */
  rangeStatusDelayMs?: number;
  now?: () => Date;
}

const MAX_COLLISIONS = 64;
/** Retry delay when this process does not hold the allocation fence (or could not confirm it). */
const FENCE_RETRY_MS = 1000;

export class IpamController {
  private readonly states = new Map<string, RangeState>();
  /** Blocks per request uid, across ranges: a request normally holds one. */
  private readonly byRequest = new Map<string, Set<HeldBlock>>();
  /** The range status this process last wrote, by range key; undefined while a write's outcome is unknown. */
  private readonly writtenRangeStatus = new Map<string, IPAMRangeStatus | undefined>();
  private readonly statusDelay: number;
  private readonly now: () => Date;

  constructor(private readonly d: IpamControllerDeps) {
    this.statusDelay = d.rangeStatusDelayMs ?? 1000;
    this.now = d.now ?? (() => new Date());
  }

  // ---------------------------------------------------------------- start-up

  /**
   * Called once the caches are synced, before any worker runs: rebuilds every range's ledger and
   * allocator from the allocation objects, then queues everything once.
   */
  bootstrap(): void {
    for (const range of this.d.ranges.list()) this.applyRangeSpec(range);
    // Records whose request published their block come first, oldest first: they win every overlap,
    // so a forged or stale record can never displace them; losers are conflicts to collect.
    const published = (a: IPAMAllocation) => this.publishedBy(a) !== undefined;
    const ordered = [...this.d.allocations.list()].sort(
      (a, b) =>
        Number(published(b)) - Number(published(a)) ||
        (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") ||
        (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""),
    );
    for (const allocation of ordered) this.onAllocationUpsert(allocation);
    for (const state of this.states.values()) this.buildAllocator(state);
    // Blocks published without a record (the original kubipam, or a record removed by hand) are
    // reserved before anything is handed out, if inside the range, admitted and free; the request's
    // reconcile then writes the record (or flags the request).
    for (const request of this.d.requests.list()) this.reservePublished(request);
    for (const range of this.d.ranges.list()) this.d.rangeQueue.add(objectKey(range));
    for (const request of this.d.requests.list()) this.d.requestQueue.add(objectKey(request));
    for (const allocation of this.d.allocations.list()) this.d.allocationQueue.add(objectKey(allocation));
  }

  // ---------------------------------------------------------------- event handlers (cache → state)

  onRangeChange(range: IPAMRange, old?: IPAMRange): void {
    const key = objectKey(range);
    // Our own status writes change neither generation nor deletion: nothing to do for them. A
    // changed state or message is rare from us and may be someone else's edit: write ours again.
    if (
      old &&
      old.metadata.generation === range.metadata.generation &&
      old.metadata.deletionTimestamp === range.metadata.deletionTimestamp &&
      sameStrings(old.metadata.finalizers, range.metadata.finalizers) &&
      old.status?.state === range.status?.state &&
      (old.status?.message ?? "") === (range.status?.message ?? "")
    ) {
      return;
    }
    this.d.rangeQueue.add(key);
  }

  onRangeDelete(range: IPAMRange): void {
    this.d.rangeQueue.add(objectKey(range));
  }

  onRequestChange(request: IPAMRequest, old?: IPAMRequest): void {
    if (old) {
      const relevant =
        old.metadata.generation !== request.metadata.generation ||
        old.metadata.deletionTimestamp !== request.metadata.deletionTimestamp ||
        (old.status?.cidr ?? "") !== (request.status?.cidr ?? "") ||
        (hasFinalizer(old) && !hasFinalizer(request)) ||
        // A status we never write (someone else's edit): write ours again.
        (request.status?.cidr ? request.status.state !== "Ready" : request.status?.state === "Ready");
      if (!relevant) return;
    }
    this.d.requestQueue.add(objectKey(request));
  }

  onRequestDelete(request: IPAMRequest): void {
    const range = rangeRefOf(request);
    // A range being deleted may have been waiting for this request.
    if (!isInvalid(range)) this.d.rangeQueue.add(`${range.namespace}/${range.name}`);
    // Gone without our finalizer's help (or after it): its allocation objects are garbage now.
    const uid = request.metadata.uid ?? "";
    for (const allocation of this.d.allocations.byIndex(ALLOCATIONS_BY_REQUEST, uid)) {
      this.d.allocationQueue.add(objectKey(allocation));
    }
    for (const block of this.byRequest.get(uid) ?? []) {
      const state = this.stateForBlock(block);
      if (state) this.d.allocationQueue.add(`${state.namespace}/${block.objectName}`);
    }
    const ref = rangeRefOf(request);
    if (!isInvalid(ref)) this.states.get(`${ref.namespace}/${ref.name}`)?.busy.delete(objectKey(request));
  }

  onAllocationUpsert(allocation: IPAMAllocation): void {
    const cidr = parseHeldCidr(allocation.spec?.cidr ?? "");
    const namespace = allocation.metadata.namespace ?? "";
    const rangeName = allocation.spec?.range?.name;
    const request = allocation.spec?.request;
    const canonical =
      cidr &&
      rangeName &&
      allocation.spec.cidr === cidr.toString() &&
      allocation.metadata.name === allocationName(rangeName, allocation.spec.cidr);
    if (!cidr || !rangeName || !request || !canonical) {
      // Only a record named by its block guards it (AlreadyExists); any other name is not kubipam's.
      this.d.log.warn("ignoring malformed IPAMAllocation", { allocation: objectKey(allocation) });
      // It guards nothing; garbage collection deletes it once its request is gone or holds another.
      this.d.allocationQueue.add(objectKey(allocation));
      return;
    }
    const state = this.state(namespace, rangeName);
    const block: HeldBlock = {
      cidr,
      requestUid: request.uid,
      requestKey: `${request.namespace}/${request.name}`,
      objectName: allocation.metadata.name ?? "",
      rangeKey: state.key,
      phase: "held",
      objectUid: allocation.metadata.uid,
    };
    const known = state.held(cidr);
    const entry = state.recordHeld(block);
    if (!entry) {
      this.d.log.error("IPAMAllocation overlaps another allocation", {
        allocation: objectKey(allocation),
        cidr: `${cidr}`,
      });
      this.d.metrics.failed(state.key, "conflict");
      // Collected (and its request told) by garbage collection: the holder in the ledger wins.
      this.d.allocationQueue.add(objectKey(allocation));
      return;
    }
    if (known && known !== entry) this.unindex(known);
    this.index(entry);
    // An allocation whose request this process has not seen may be garbage (checked live there).
    if (!this.d.requests.get(block.requestKey)) this.d.allocationQueue.add(objectKey(allocation));
    this.touchRangeStatus(state);
  }

  onAllocationDelete(allocation: IPAMAllocation): void {
    const cidr = parseHeldCidr(allocation.spec?.cidr ?? "");
    const rangeName = allocation.spec?.range?.name;
    if (!cidr || !rangeName) return;
    const state = this.states.get(`${allocation.metadata.namespace ?? ""}/${rangeName}`);
    const block = state?.held(cidr);
    // A claim in flight is this process's own, not yet visible object: leave it alone.
    if (!state || !block || block.phase === "claiming") return;
    if (block.requestUid !== allocation.spec.request.uid) return;
    if (block.objectUid && block.objectUid !== allocation.metadata.uid) return;
    // The record of a live holder went (its finalizer removed by hand): keep the block, and let the
    // request's reconcile write the record again.
    if (this.publishedBy(allocation)) {
      block.phase = "claiming";
      block.objectUid = undefined;
      this.d.requestQueue.add(block.requestKey);
      return;
    }
    this.release(state, block);
  }

  /** The live request that published exactly this record's block, if any. */
  private publishedBy(allocation: IPAMAllocation): IPAMRequest | undefined {
    const ref = allocation.spec?.request;
    if (!ref) return undefined;
    const request = this.d.requests.get(`${ref.namespace}/${ref.name}`);
    if (!request || request.metadata.uid !== ref.uid || request.metadata.deletionTimestamp) return undefined;
    return request.status?.cidr === allocation.spec.cidr ? request : undefined;
  }

  /** Bootstrap: reserves a block a request published without a record, if inside, admitted and free. */
  private reservePublished(request: IPAMRequest): void {
    const cidr = parseHeldCidr(request.status?.cidr ?? "");
    const ref = rangeRefOf(request);
    if (!cidr || isInvalid(ref) || request.metadata.deletionTimestamp) return;
    const state = this.states.get(`${ref.namespace}/${ref.name}`);
    const allocator = state?.currentAllocator();
    const range = this.d.ranges.get(`${ref.namespace}/${ref.name}`);
    if (!state || !allocator || !range || state.held(cidr)) return;
    if (!admitsNamespace(range.spec, ref.namespace, request.metadata.namespace ?? "")) return;
    if (!allocator.contains(cidr)) return;
    try {
      allocator.reserve(cidr);
    } catch {
      return; // not free: the request's reconcile flags it
    }
    this.recordClaim(state, request, cidr);
  }

  // ---------------------------------------------------------------- range reconciler

  async reconcileRange(key: string): Promise<void> {
    const range = this.d.ranges.get(key);
    const { namespace = "", name } = splitKey(key);
    const state = this.state(namespace, name);
    if (!range) {
      this.writtenRangeStatus.delete(key);
      state.exists = false;
      state.spec = undefined;
      this.d.metrics.rangeGone(namespace, name);
      this.wakeWaiting(state, true);
      this.forgetIfEmpty(state);
      return;
    }
    const changed = this.applyRangeSpec(range);
    // Listed only when needed: this runs after every batch of allocation changes (debounced), and a
    // range that holds blocks is referenced without looking at its requests.
    const requests = () => this.d.requests.byIndex(REQUESTS_BY_RANGE, key);

    if (range.metadata.deletionTimestamp) {
      if (state.heldCount === 0 && requests().length === 0) {
        if (hasFinalizer(range)) await this.d.writer.setRangeFinalizer(range, false);
        return;
      }
      await this.writeRangeStatus(range, state, "Deleting", "waiting for pending requests to be deleted");
      this.wakeWaiting(state, true);
      return;
    }

    // Always while the range exists: a block may be published the moment after it appears.
    if (!hasFinalizer(range)) await this.d.writer.setRangeFinalizer(range, true);

    if (state.spec) {
      this.buildAllocator(state);
      await this.writeRangeStatus(range, state, "Ready", "");
    } else {
      await this.writeRangeStatus(range, state, "Invalid", state.invalidMessage);
    }
    if (changed) {
      // A spec edit is rare and user-made: revisit every request of the range (consent, pool
      // shrinking out from under a block, validity), not only the waiting ones.
      for (const request of requests()) this.d.requestQueue.add(objectKey(request));
      state.busy.clear();
    }
  }

  private applyRangeSpec(range: IPAMRange): boolean {
    const state = this.state(range.metadata.namespace ?? "", range.metadata.name ?? "");
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
    return state.configure(spec, range.status?.roundRobin) || changed;
  }

  private buildAllocator(state: RangeState): void {
    const built = state.ensureAllocator();
    if (!built) return;
    for (const r of built.rejected) {
      this.d.log.error("allocation conflicts with another one of its range", {
        range: state.key,
        cidr: `${r.cidr}`,
        reason: r.reason,
      });
    }
  }

  private async writeRangeStatus(
    range: IPAMRange,
    state: RangeState,
    phase: "Ready" | "Invalid" | "Deleting",
    message: string,
  ): Promise<void> {
    const allocator = state.currentAllocator();
    const usage = allocator?.usage();
    const generation = range.metadata.generation;
    const status: IPAMRangeStatus = {
      state: phase,
      message,
      observedGeneration: generation,
      conditions: setCondition(
        range.status?.conditions,
        {
          type: "Ready",
          status: phase === "Ready" ? "True" : "False",
          reason: phase === "Ready" ? "Valid" : phase === "Invalid" ? "InvalidSpec" : "Deleting",
          message,
          observedGeneration: generation,
        },
        this.now(),
      ),
      size: (usage?.total ?? 0n).toString(),
      allocated: (usage?.allocated ?? 0n).toString(),
      free: (usage?.free ?? 0n).toString(),
      roundRobin: state.exportCursors(),
      pendingRemovals: (allocator?.pendingRemovals() ?? []).map((c) => c.toString()),
    };
    if (usage) {
      this.d.metrics.rangeUsage(state.namespace, state.name, {
        size: usage.total,
        allocated: usage.allocated,
        free: usage.free,
      });
    }
    // The cache may not show our last write yet, and a write that failed may have been applied
    // anyway: skip only when the cache and our last write (if any, and if it surely succeeded) agree.
    const written = this.writtenRangeStatus.get(state.key);
    const writtenAgrees = this.writtenRangeStatus.has(state.key)
      ? written !== undefined && sameRangeStatus(written, status)
      : true;
    if (sameRangeStatus(range.status, status) && writtenAgrees) return;
    this.writtenRangeStatus.set(state.key, undefined);
    await this.d.writer.patchRangeStatus(range, status);
    this.writtenRangeStatus.set(state.key, status);
    if (range.status?.state !== phase) {
      this.d.events.emit(
        range,
        phase === "Ready" ? "Normal" : "Warning",
        phase === "Ready" ? "Ready" : phase,
        message || "range is ready",
      );
    }
  }

  // ---------------------------------------------------------------- request reconciler

  async reconcileRequest(key: string): Promise<void> {
    try {
      await this.reconcileRequestOnce(key);
    } catch (err) {
      // A write the API server refused (a missing RBAC permission, a rejected object): say so on the
      // request too; the error still goes to the log and the retry backoff.
      const status = statusOf(err);
      if (status === 403 || status === 400 || status === 422) await this.reportRejected(key, err);
      throw err;
    }
  }

  private async reconcileRequestOnce(key: string): Promise<void> {
    const request = this.d.requests.get(key);
    if (!request) return;
    if (request.metadata.deletionTimestamp) return this.finalizeRequest(request);

    const ref = rangeRefOf(request);
    const cidrText = request.status?.cidr;
    if (cidrText) return this.keepAllocation(request, ref, cidrText);
    if (isInvalid(ref)) return this.setRequestStatus(request, "Invalid", ref.message);

    const rangeKey = `${ref.namespace}/${ref.name}`;
    const range = this.d.ranges.get(rangeKey);
    const state = this.state(ref.namespace, ref.name);
    state.busy.delete(key);
    if (!range) return this.setRequestStatus(request, "Invalid", `IPAMRange ${rangeKey} not found`);
    if (!admitsNamespace(range.spec, ref.namespace, request.metadata.namespace ?? "")) {
      return this.setRequestStatus(request, "Invalid", notAdmittedMessage(rangeKey, request));
    }
    if (!state.spec) {
      return this.setRequestStatus(
        request,
        "Invalid",
        `IPAMRange ${rangeKey} not valid: ${state.invalidMessage}`,
      );
    }
    if (range.metadata.deletionTimestamp) {
      return this.setRequestStatus(request, "Invalid", `IPAMRange ${rangeKey} is being deleted`);
    }
    const spec = state.spec;
    const built = state.ensureAllocator();
    if (spec.family === undefined || !built) {
      state.busy.add(key);
      return this.setRequestStatus(request, "Busy", "the range is empty");
    }
    let plan: RequestPlan;
    try {
      plan = parseRequest(
        { size: request.spec.size, request: request.spec.request },
        spec.family,
        spec.chunkSize || undefined,
      );
    } catch (err) {
      return this.setRequestStatus(request, "Invalid", errorMessage(err));
    }
    // The range must be protected before any of its blocks is published (deletion then waits).
    if (!hasFinalizer(range)) await this.d.writer.setRangeFinalizer(range, true);
    // The publish is conditional on this version: a version seen before the fence was confirmed.
    const version = hasFinalizer(request)
      ? request.metadata.resourceVersion
      : await this.d.writer.setRequestFinalizer(request, true);

    // A block this request already holds: an earlier attempt of ours, or a record naming it that a
    // previous fence holder (or someone else) wrote. It becomes the request's block only if it fits.
    const existing = this.blocksOf(request.metadata.uid ?? "").find((b) => this.stateForBlock(b) === state);
    if (existing && !fitsPlan(existing.cidr, plan, built.allocator)) {
      await this.revoke(request, state, existing, `${existing.cidr} does not match the request`);
      this.d.requestQueue.add(key);
      return;
    }
    const block = existing ?? (await this.claim(request, range, state, plan, built.allocator));
    if (!block) return;
    await this.publish(request, state, block, version);
  }

  /** Allocates a block for the request and creates its allocation object; undefined if none. */
  private async claim(
    request: IPAMRequest,
    range: IPAMRange,
    state: RangeState,
    plan: RequestPlan,
    allocator: Allocator,
  ): Promise<HeldBlock | undefined> {
    for (let attempt = 0; attempt < MAX_COLLISIONS; attempt++) {
      let cidr: Cidr;
      try {
        if (plan.kind === "size") cidr = allocator.allocate(plan.size);
        else if (plan.kind === "indexed") cidr = allocator.allocateIndexed(plan.index, plan.size);
        else {
          allocator.reserve(plan.cidr);
          cidr = plan.cidr;
        }
      } catch (err) {
        if (err instanceof IpamError && err.code === "Busy") {
          state.busy.add(objectKey(request));
          this.d.metrics.failed(state.key, "busy");
          await this.setRequestStatus(request, "Busy", err.message);
        } else {
          this.d.metrics.failed(state.key, "invalid");
          await this.setRequestStatus(request, "Invalid", errorMessage(err));
        }
        return undefined;
      }
      const block = this.recordClaim(state, request, cidr);
      const object = await this.createAllocationObject(range, state, block);
      if (object.spec.request.uid === block.requestUid) {
        block.phase = "held";
        block.objectUid = object.metadata.uid;
        this.touchRangeStatus(state);
        return block;
      }
      // Someone else holds it (another process, or a block this cache has not seen yet): keep it
      // marked, attributed to its holder, and try the next one. A dedicated block cannot move on.
      this.recordForeign(state, block, object);
      if (plan.kind !== "size") {
        state.busy.add(objectKey(request));
        await this.setRequestStatus(request, "Busy", `${cidr} already busy`);
        return undefined;
      }
    }
    // Another writer is far ahead of this cache; what was learnt stays in the ledger. Try again soon
    // without growing the error backoff: this is contention, not failure.
    this.d.log.info("blocks taken by other writers; retrying", {
      range: state.key,
      request: objectKey(request),
    });
    this.d.requestQueue.addAfter(objectKey(request), 100);
    return undefined;
  }

  /** Enters a block (already marked in the allocator) as this request's claim in flight. */
  private recordClaim(state: RangeState, request: IPAMRequest, cidr: Cidr): HeldBlock {
    const block: HeldBlock = {
      cidr,
      requestUid: request.metadata.uid ?? "",
      requestKey: objectKey(request),
      objectName: allocationName(state.name, cidr.toString()),
      rangeKey: state.key,
      phase: "claiming",
    };
    state.recordClaim(block);
    this.index(block);
    return block;
  }

  /** Creates the block's allocation object; returns it, or the object another holder already has. */
  private async createAllocationObject(
    range: IPAMRange,
    state: RangeState,
    block: HeldBlock,
  ): Promise<IPAMAllocation> {
    const { namespace: requestNamespace = "", name: requestName } = splitKey(block.requestKey);
    const object: IPAMAllocation = {
      apiVersion: API_VERSION,
      kind: "IPAMAllocation",
      metadata: {
        name: block.objectName,
        namespace: state.namespace,
        labels: { [RANGE_LABEL]: rangeLabelValue(state.name) },
        // In the create body: no extra write, and the record cannot vanish while its holder lives.
        finalizers: [ALLOCATION_FINALIZER],
      },
      spec: {
        range: { name: state.name, uid: range.metadata.uid ?? "" },
        cidr: block.cidr.toString(),
        request: { namespace: requestNamespace, name: requestName, uid: block.requestUid },
      },
    };
    let failure: unknown;
    try {
      return await this.d.writer.createAllocation(object);
    } catch (err) {
      failure = err;
    }
    // Either it exists (AlreadyExists) or the outcome is unknown (timeout, 5xx): read it back.
    let existing: IPAMAllocation | undefined;
    try {
      existing = await this.d.writer.getAllocation(state.namespace, block.objectName);
    } catch (readErr) {
      // Unknown outcome: keep the claim (conservative); the next attempt re-reads before use.
      this.d.log.warn("allocation outcome unknown", { cidr: `${block.cidr}`, error: errorMessage(readErr) });
      throw failure;
    }
    if (!existing) {
      this.undoClaim(state, block);
      throw failure;
    }
    return existing;
  }

  /** Replaces this process's claim by the entry of the holder the API server knows. */
  private recordForeign(state: RangeState, claim: HeldBlock, object: IPAMAllocation): void {
    // The read may be older than the watch: if the cache no longer (or not yet) has that object,
    // recording it would keep a block the watch already released. Free the claim instead; the
    // watch brings the object in if it still exists, and the API server guards the next try.
    if (
      this.d.allocations.get(`${state.namespace}/${claim.objectName}`)?.metadata.uid !== object.metadata.uid
    ) {
      this.undoClaim(state, claim);
      return;
    }
    this.unindex(claim);
    const foreign = state.recordHeld({
      cidr: claim.cidr,
      requestUid: object.spec.request.uid,
      requestKey: `${object.spec.request.namespace}/${object.spec.request.name}`,
      objectName: claim.objectName,
      rangeKey: state.key,
      phase: "held",
      objectUid: object.metadata.uid,
    });
    if (foreign) this.index(foreign);
  }

  private undoClaim(state: RangeState, block: HeldBlock): void {
    this.unindex(block);
    if (!state.drop(block)) return;
    // A range status written while the claim was in flight counted it: write the usage again.
    this.wakeWaiting(state, false);
    this.touchRangeStatus(state);
  }

  /**
   * Writes status.cidr once the fence is confirmed, conditional on the request's version seen before
   * that confirm: a later fence holder that revoked the claim (by writing the request) makes it fail.
   * The CEL rule on status.cidr makes the first writer win; a loser gives its block back.
   */
  private async publish(
    request: IPAMRequest,
    state: RangeState,
    block: HeldBlock,
    version: string | undefined,
  ): Promise<void> {
    if (block.phase === "claiming") {
      // Left over from an attempt with an unknown outcome: confirm the object exists.
      const existing = await this.d.writer.getAllocation(state.namespace, block.objectName);
      if (!existing || existing.spec.request.uid !== block.requestUid) {
        if (existing) this.recordForeign(state, block, existing);
        else this.undoClaim(state, block);
        this.d.requestQueue.add(objectKey(request));
        return;
      }
      block.phase = "held";
      block.objectUid = existing.metadata.uid;
    }
    if (!(await this.d.fence.confirm())) {
      // Not (or no longer) the fence holder: publish nothing; the claim stays for the next attempt.
      this.d.requestQueue.addAfter(objectKey(request), FENCE_RETRY_MS);
      return;
    }
    const cidr = block.cidr.toString();
    try {
      await this.d.writer.patchRequestStatus(
        request,
        this.requestStatus(request, "Ready", "", cidr),
        version,
      );
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return this.giveBack(state, block);
      // The request changed since it was read (or the claim was revoked): decide again.
      if (status === 409) return this.d.requestQueue.add(objectKey(request));
      if (status === 422) {
        const fresh = await this.d.writer.getRequest(
          request.metadata.namespace ?? "",
          request.metadata.name ?? "",
        );
        if (!fresh || fresh.metadata.uid !== request.metadata.uid) return this.giveBack(state, block);
        if (fresh.status?.cidr && fresh.status.cidr !== cidr) {
          this.d.metrics.failed(state.key, "conflict");
          return this.giveBack(state, block);
        }
      }
      throw err;
    }
    this.d.metrics.allocated(state.key, latencySince(request.metadata.creationTimestamp, this.now()));
    this.d.events.emit(request, "Normal", "Allocated", `allocated ${cidr} from IPAMRange ${state.key}`);
    this.dropExtras(request, cidr);
  }

  /**
   * Takes a claim away from a request that has not published it: first the request is written
   * (conditional on showing no cidr), so no earlier fence holder can still publish the claim, then its
   * record goes.
   */
  private async revoke(
    request: IPAMRequest,
    state: RangeState,
    block: HeldBlock,
    why: string,
  ): Promise<void> {
    this.d.log.warn("revoking an unpublished allocation record", {
      request: objectKey(request),
      cidr: `${block.cidr}`,
      reason: why,
    });
    await this.d.writer.patchRequestStatus(
      request,
      this.requestStatus(request, request.status?.state ?? "Busy", `reallocating: ${why}`, undefined),
      request.metadata.resourceVersion,
    );
    await this.giveBack(state, block);
  }

  /** A request that already has status.cidr: make sure its block is recorded and guarded. */
  private async keepAllocation(
    request: IPAMRequest,
    ref: RangeRef | InvalidSpec,
    cidrText: string,
  ): Promise<void> {
    const cidr = parseHeldCidr(cidrText);
    if (isInvalid(ref) || !cidr) {
      // Never drop a published allocation; just say what is wrong.
      const message = isInvalid(ref) ? ref.message : `status.cidr "${cidrText}" is not a CIDR`;
      return this.setRequestStatus(request, request.status?.state ?? "Ready", message, cidrText);
    }
    const state = this.state(ref.namespace, ref.name);
    state.busy.delete(objectKey(request));
    const range = this.d.ranges.get(state.key);
    const block = state.held(cidr);
    if (!block || block.requestUid !== request.metadata.uid || block.phase === "claiming") {
      if (!range) {
        return this.setRequestStatus(request, "Ready", `IPAMRange ${state.key} not found`, cidrText);
      }
      const problem = await this.adopt(request, range, state, cidr, block);
      if (problem === "retry") return;
      if (problem) {
        this.d.metrics.failed(state.key, "conflict");
        return this.setRequestStatus(
          request,
          "Invalid",
          `status.cidr ${cidrText} was not allocated by kubipam and ${problem}: delete this request and create a new one`,
          cidrText,
        );
      }
    } else if (!hasFinalizer(request)) {
      await this.d.writer.setRequestFinalizer(request, true);
    }
    const allocator = state.currentAllocator();
    const outside = allocator ? !allocator.contains(cidr) : false;
    const admitted = !range || admitsNamespace(range.spec, ref.namespace, request.metadata.namespace ?? "");
    const message = outside
      ? `${cidrText} is no longer inside IPAMRange ${state.key}; it stays allocated until this request is deleted`
      : admitted
        ? ""
        : `${notAdmittedMessage(state.key, request)}; ${cidrText} stays allocated until this request is deleted`;
    await this.setRequestStatus(request, "Ready", message, cidrText, { outside, admitted });
    this.dropExtras(request, cidrText);
  }

  /**
   * Makes a published block that has no record of this request's the request's own: the record on the
   * server decides; without one, the block is adopted only when it is inside the range, the namespace
   * is admitted and the block is free. Returns what is wrong, "retry", or undefined once recorded.
   */
  private async adopt(
    request: IPAMRequest,
    range: IPAMRange,
    state: RangeState,
    cidr: Cidr,
    block: HeldBlock | undefined,
  ): Promise<string | "retry" | undefined> {
    const uid = request.metadata.uid ?? "";
    const name = allocationName(state.name, cidr.toString());
    const object = await this.d.writer.getAllocation(state.namespace, name);
    if (object && object.spec.request.uid !== uid) {
      const holder = object.spec.request;
      return `${cidr} is held by request ${holder.namespace}/${holder.name}`;
    }
    if (object) {
      return this.recordHeldObject(state, object)
        ? undefined
        : `overlaps a block held by another request of IPAMRange ${state.key}`;
    }
    if (!admitsNamespace(range.spec, state.namespace, request.metadata.namespace ?? "")) {
      return `IPAMRange ${state.key} does not admit namespace ${request.metadata.namespace}`;
    }
    const allocator = state.ensureAllocator()?.allocator;
    if (!allocator?.contains(cidr)) return `is outside IPAMRange ${state.key}`;
    let claim = block?.requestUid === uid ? block : undefined;
    if (!claim) {
      if (block) return `overlaps ${block.cidr} held by request ${block.requestKey}`;
      try {
        allocator.reserve(cidr);
      } catch {
        return `overlaps a block held by another request of IPAMRange ${state.key}`;
      }
      claim = this.recordClaim(state, request, cidr);
    }
    claim.phase = "claiming";
    if (!hasFinalizer(request)) await this.d.writer.setRequestFinalizer(request, true);
    const created = await this.createAllocationObject(range, state, claim);
    if (created.spec.request.uid !== uid) {
      this.recordForeign(state, claim, created);
      return `${cidr} is held by request ${created.spec.request.namespace}/${created.spec.request.name}`;
    }
    claim.phase = "held";
    claim.objectUid = created.metadata.uid;
    if (!(await this.d.fence.confirm())) {
      // Only the fence holder may stand behind a block: give the record back and try later.
      await this.giveBack(state, claim);
      this.d.requestQueue.addAfter(objectKey(request), FENCE_RETRY_MS);
      return "retry";
    }
    this.touchRangeStatus(state);
    return undefined;
  }

  /** Records an allocation object read from the server (it wins over a claim of the same block). */
  private recordHeldObject(state: RangeState, object: IPAMAllocation): boolean {
    const known = state.held(Cidr.parse(object.spec.cidr));
    const entry = state.recordHeld({
      cidr: Cidr.parse(object.spec.cidr),
      requestUid: object.spec.request.uid,
      requestKey: `${object.spec.request.namespace}/${object.spec.request.name}`,
      objectName: object.metadata.name ?? "",
      rangeKey: state.key,
      phase: "held",
      objectUid: object.metadata.uid,
    });
    if (known && known !== entry) this.unindex(known);
    if (entry) this.index(entry);
    this.touchRangeStatus(state);
    return entry !== undefined;
  }
  /** Deletion: free every block of the request, then let it go. */
  private async finalizeRequest(request: IPAMRequest): Promise<void> {
    const uid = request.metadata.uid ?? "";
    const names = new Map<string, string>();
    for (const a of this.d.allocations.byIndex(ALLOCATIONS_BY_REQUEST, uid)) {
      names.set(objectKey(a), a.metadata.uid ?? "");
    }
    for (const block of this.blocksOf(uid)) {
      const state = this.stateForBlock(block);
      if (state && !names.has(`${state.namespace}/${block.objectName}`)) {
        names.set(`${state.namespace}/${block.objectName}`, block.objectUid ?? "");
      }
    }
    for (const [key, objectUid] of names) {
      const { namespace = "", name } = splitKey(key);
      await this.d.writer.deleteAllocation(namespace, name, objectUid || undefined);
    }
    for (const block of [...this.blocksOf(uid)]) {
      const state = this.stateForBlock(block);
      if (state) this.release(state, block);
    }
    if (hasFinalizer(request)) await this.d.writer.setRequestFinalizer(request, false);
    const ref = rangeRefOf(request);
    if (!isInvalid(ref)) this.d.rangeQueue.add(`${ref.namespace}/${ref.name}`);
  }

  // ---------------------------------------------------------------- allocation garbage collection

  /**
   * Deletes an allocation object that guards nothing: its request is gone or holds another block, it
   * lost an overlap to the holder in the ledger, or it is not named by its block. A record that
   * carries a waiting request's claim is revoked first (see revoke).
   */
  async reconcileAllocation(key: string): Promise<void> {
    const allocation = this.d.allocations.get(key);
    if (!allocation) return;
    const request = allocation.spec?.request;
    if (!request?.uid) return this.collect(allocation);
    const cidr = parseHeldCidr(allocation.spec.cidr);
    const state = this.states.get(`${allocation.metadata.namespace ?? ""}/${allocation.spec.range?.name}`);
    const entry = cidr && state?.held(cidr);
    if (entry && entry.requestUid === request.uid && entry.phase === "claiming") return; // ours, in flight
    const recorded =
      entry !== undefined &&
      entry.requestUid === request.uid &&
      (entry.objectUid ?? allocation.metadata.uid) === allocation.metadata.uid;
    const cached = this.d.requests.get(`${request.namespace}/${request.name}`);
    if (recorded && cached?.metadata.uid === request.uid) {
      const published = cached.status?.cidr;
      if (!published || published === allocation.spec.cidr) return;
    }
    // The cache may lag behind: decide on a live read.
    const live = await this.d.writer.getRequest(request.namespace, request.name);
    const holder = live?.metadata.uid === request.uid && !live.metadata.deletionTimestamp ? live : undefined;
    if (recorded && holder && (!holder.status?.cidr || holder.status.cidr === allocation.spec.cidr)) return;
    if (!recorded && holder && !holder.status?.cidr && state && cidr) {
      // A record that lost to the ledger's holder but names a waiting request: revoke, then collect.
      const claim: HeldBlock = {
        cidr,
        requestUid: request.uid,
        requestKey: `${request.namespace}/${request.name}`,
        objectName: allocation.metadata.name ?? "",
        rangeKey: state.key,
        phase: "held",
        objectUid: allocation.metadata.uid,
      };
      await this.revoke(
        holder,
        state,
        claim,
        `the record ${allocation.metadata.name} overlaps another block`,
      );
      this.d.requestQueue.add(claim.requestKey);
      return;
    }
    await this.collect(allocation);
    // A request that published the losing block learns that it holds nothing kubipam stands behind.
    if (!recorded && holder?.status?.cidr === allocation.spec.cidr)
      this.d.requestQueue.add(objectKey(holder));
    if (recorded && state && entry) this.release(state, entry);
  }

  private async collect(allocation: IPAMAllocation): Promise<void> {
    this.d.log.info("deleting orphaned IPAMAllocation", {
      allocation: objectKey(allocation),
      cidr: allocation.spec?.cidr,
    });
    try {
      await this.d.writer.deleteAllocation(
        allocation.metadata.namespace ?? "",
        allocation.metadata.name ?? "",
        allocation.metadata.uid,
      );
    } catch (err) {
      // 409: the name holds a newer allocation already; its own events will bring it here if needed.
      if (statusOf(err) !== 409) throw err;
    }
  }
  // ---------------------------------------------------------------- helpers

  private release(state: RangeState, block: HeldBlock): void {
    this.unindex(block);
    if (!state.drop(block)) return;
    this.d.metrics.released(state.key);
    this.wakeWaiting(state, false);
    this.touchRangeStatus(state);
    this.forgetIfEmpty(state);
  }

  /** Wakes the range's busy requests; with `all`, also those waiting for the range itself. */
  private wakeWaiting(state: RangeState, all: boolean): void {
    for (const key of state.busy) this.d.requestQueue.add(key);
    state.busy.clear();
    if (!all) return;
    for (const request of this.d.requests.byIndex(REQUESTS_BY_RANGE, state.key)) {
      if (!request.status?.cidr) this.d.requestQueue.add(objectKey(request));
    }
  }

  private touchRangeStatus(state: RangeState): void {
    this.d.rangeQueue.addAfter(state.key, this.statusDelay);
  }

  /** Extra blocks of a request that lost a race: their objects go, via garbage collection. */
  private dropExtras(request: IPAMRequest, cidr: string): void {
    for (const block of this.blocksOf(request.metadata.uid ?? "")) {
      if (block.cidr.toString() === cidr) continue;
      const state = this.stateForBlock(block);
      if (state) this.d.allocationQueue.add(`${state.namespace}/${block.objectName}`);
    }
  }

  /** Deletes this process's losing claim, only if the object is still the one it created. */
  private async giveBack(state: RangeState, block: HeldBlock): Promise<void> {
    try {
      await this.d.writer.deleteAllocation(state.namespace, block.objectName, block.objectUid);
    } catch (err) {
      // 409: the name now holds another allocation (ours was already collected); leave it be.
      if (statusOf(err) !== 409) throw err;
      this.unindex(block);
      return;
    }
    this.release(state, block);
  }

  private async setRequestStatus(
    request: IPAMRequest,
    state: RequestState,
    message: string,
    cidr?: string,
    placement?: Placement,
  ): Promise<void> {
    const status = this.requestStatus(request, state, message, cidr ?? request.status?.cidr, placement);
    if (sameRequestStatus(request.status, status)) return;
    await this.d.writer.patchRequestStatus(request, status);
    if (state !== "Ready" && request.status?.state !== state) {
      this.d.events.emit(request, "Warning", state, message);
    }
  }

  /**
   * Writes what the API server refused to the request's status — `forbidden: <API message>` (reason
   * Forbidden) or `rejected by the API server: <message>` (reason Rejected); Ready=False unless it is
   * allocated already — and emits a Warning event. Guarded by the cached resourceVersion, so it never
   * overwrites a newer status (e.g. another writer's allocation); best effort, the error is logged anyway.
   */
  private async reportRejected(key: string, err: unknown): Promise<void> {
    const request = this.d.requests.get(key);
    if (!request) return;
    const forbidden = statusOf(err) === 403;
    const reason = forbidden ? "Forbidden" : "Rejected";
    const message = `${forbidden ? "forbidden" : "rejected by the API server"}: ${errorMessage(err)}`;
    if (request.status?.message === message) return;
    const generation = request.metadata.generation;
    const conditions = request.status?.cidr
      ? request.status.conditions
      : setCondition(
          request.status?.conditions,
          { type: "Ready", status: "False", reason, message, observedGeneration: generation },
          this.now(),
        );
    try {
      await this.d.writer.patchRequestStatus(
        request,
        { ...request.status, message, observedGeneration: generation, conditions },
        request.metadata.resourceVersion,
      );
    } catch (writeErr) {
      this.d.log.debug("could not report the refused write on the request", {
        request: key,
        error: writeErr,
      });
      return;
    }
    this.d.events.emit(request, "Warning", reason, message);
  }

  private requestStatus(
    request: IPAMRequest,
    state: RequestState,
    message: string,
    cidr: string | undefined,
    placement: Placement = { outside: false, admitted: true },
  ): IPAMRequestStatus {
    const generation = request.metadata.generation;
    const now = this.now();
    let conditions = setCondition(
      request.status?.conditions,
      {
        type: "Ready",
        status: state === "Ready" ? "True" : "False",
        reason: state === "Ready" ? "Allocated" : state === "Busy" ? "NoSpace" : "Invalid",
        message,
        observedGeneration: generation,
      },
      now,
    );
    if (cidr) {
      const { outside, admitted } = placement;
      conditions = setCondition(
        conditions,
        {
          type: "InRange",
          status: outside ? "False" : "True",
          reason: outside ? "RangeShrunk" : "InsideRange",
          message: outside ? message : "",
          observedGeneration: generation,
        },
        now,
      );
      conditions = setCondition(
        conditions,
        {
          type: "Admitted",
          status: admitted ? "True" : "False",
          reason: admitted ? "NamespaceAdmitted" : "ConsentWithdrawn",
          message: admitted ? "" : message,
          observedGeneration: generation,
        },
        now,
      );
    }
    return {
      state,
      message,
      ...(cidr ? { cidr } : {}),
      observedGeneration: generation,
      conditions,
    };
  }

  private state(namespace: string, name: string): RangeState {
    const key = `${namespace}/${name}`;
    let state = this.states.get(key);
    if (!state) {
      state = new RangeState(namespace, name);
      this.states.set(key, state);
    }
    return state;
  }

  private forgetIfEmpty(state: RangeState): void {
    if (!state.exists && state.heldCount === 0 && state.busy.size === 0) this.states.delete(state.key);
  }

  /** The range state whose ledger holds exactly this entry (none once it was replaced or dropped). */
  private stateForBlock(block: HeldBlock): RangeState | undefined {
    const state = this.states.get(block.rangeKey);
    return state?.held(block.cidr) === block ? state : undefined;
  }

  private blocksOf(uid: string): HeldBlock[] {
    return [...(this.byRequest.get(uid) ?? [])];
  }

  private index(block: HeldBlock): void {
    let set = this.byRequest.get(block.requestUid);
    if (!set) {
      set = new Set();
      this.byRequest.set(block.requestUid, set);
    }
    set.add(block);
  }

  private unindex(block: HeldBlock): void {
    const set = this.byRequest.get(block.requestUid);
    if (!set) return;
    set.delete(block);
    if (set.size === 0) this.byRequest.delete(block.requestUid);
  }

  /** Figures for the views and tests. */
  snapshot(): { range: string; held: string[]; busy: string[] }[] {
    return [...this.states.values()].map((s) => ({
      range: s.key,
      held: [...s.heldBlocks()].map((b) => b.cidr.toString()),
      busy: [...s.busy],
    }));
  }
}

/** Where a published block stands against its range's current spec. */
interface Placement {
  outside: boolean;
  admitted: boolean;
}

function notAdmittedMessage(rangeKey: string, request: IPAMRequest): string {
  return (
    `IPAMRange ${rangeKey} does not admit requests from namespace ${request.metadata.namespace}: ` +
    `add it to the range's spec.allowedNamespaces`
  );
}

/** Whether a block someone else recorded for a request is what the request asks for. */
function fitsPlan(cidr: Cidr, plan: RequestPlan, allocator: Allocator): boolean {
  if (!allocator.contains(cidr)) return false;
  if (plan.kind === "block") return cidr.equals(plan.cidr);
  return cidr.prefix === plan.size;
}

function hasFinalizer(o: { metadata: { finalizers?: string[] } }): boolean {
  return o.metadata.finalizers?.includes(FINALIZER) ?? false;
}

function sameStrings(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function latencySince(created: string | undefined, now: Date): number | undefined {
  if (!created) return undefined;
  const t = Date.parse(created);
  return Number.isNaN(t) ? undefined : Math.max(0, (now.getTime() - t) / 1000);
}

function sameRequestStatus(a: IPAMRequestStatus | undefined, b: IPAMRequestStatus): boolean {
  return (
    a !== undefined &&
    a.state === b.state &&
    (a.message ?? "") === (b.message ?? "") &&
    (a.cidr ?? "") === (b.cidr ?? "") &&
    a.observedGeneration === b.observedGeneration &&
    conditionsEqual(a.conditions, b.conditions)
  );
}

function sameRangeStatus(a: IPAMRangeStatus | undefined, b: IPAMRangeStatus): boolean {
  return (
    a !== undefined &&
    a.state === b.state &&
    (a.message ?? "") === (b.message ?? "") &&
    a.observedGeneration === b.observedGeneration &&
    a.size === b.size &&
    a.allocated === b.allocated &&
    a.free === b.free &&
    sameStrings(a.roundRobin, b.roundRobin) &&
    sameStrings(a.pendingRemovals, b.pendingRemovals) &&
    conditionsEqual(a.conditions, b.conditions)
  );
}
