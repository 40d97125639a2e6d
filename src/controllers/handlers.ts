// Informer events → work. Handlers never write to the API server and never decide; they queue keys,
// and hand what a record says to the ledger through one narrow path (a record seen, a record gone).
// bootstrap() rebuilds the ledger from the caches before any worker runs.

import { poolKey, poolOfRecord } from "../api/pool-ref.ts";
import type { IPAMAllocation, IPAMRequest, ObjectMeta, RangeObject } from "../api/types.ts";
import { isInvalid, rangeRefOf, recordName } from "../api/validation.ts";
import { objectKey } from "../runtime/kube.ts";
import type { Adoption } from "./adoption.ts";
import { sameLabels } from "./consent.ts";
import type { Context } from "./context.ts";
import { isForeignClusterRecord } from "./foreign-records.ts";
import { holderOfRecord, type LiveHolder } from "./holders.ts";
import { ALLOCATIONS_BY_REQUEST, REQUESTS_BY_CLUSTER_NAMESPACE } from "./indexes.ts";
import { parseHeldCidr } from "./pool-state.ts";
import { type RangeReconciler, rangeChanged } from "./range-reconciler.ts";
import { heldBlockOf } from "./records.ts";
import { requestChanged } from "./request-reconciler.ts";

/** Code-unit order (timestamps, object names): the same everywhere, and no ICU collator loaded. */
function ordinal(a = "", b = ""): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class Handlers {
  constructor(
    private readonly c: Context,
    private readonly ranges: RangeReconciler,
    private readonly adoption: Adoption,
  ) {}

  /**
   * Called once the caches hold every record (after the fence's relist), before any worker runs:
   * rebuilds every range's ledger and allocator, then queues everything once.
   */
  bootstrap(): void {
    const { d, ledger } = this.c;
    const ranges: RangeObject[] = [...d.ranges.list(), ...(d.clusterRanges?.list() ?? [])];
    for (const range of ranges) this.ranges.applySpec(range);
    // Records whose request published their block come first, oldest first: they win every overlap,
    // so a forged or stale record can never displace them; losers are conflicts to collect.
    const published = new Set(d.allocations.list().filter((a) => this.publishedBy(a)));
    const ordered = [...d.allocations.list()].sort(
      (a, b) =>
        Number(published.has(b)) - Number(published.has(a)) ||
        ordinal(a.metadata.creationTimestamp, b.metadata.creationTimestamp) ||
        ordinal(a.metadata.name, b.metadata.name),
    );
    for (const allocation of ordered) this.onAllocationUpsert(allocation);
    for (const state of ledger.ranges()) this.ranges.buildAllocator(state);
    // Blocks published without a record (the original kubipam, or a record removed by hand) are
    // reserved before anything is handed out, if inside the range, admitted and free; the request's
    // reconcile then writes the record (or flags the request).
    for (const request of d.requests.list()) this.adoption.reservePublished(request);
    for (const range of ranges) d.rangeQueue.add(objectKey(range));
    // Waiting requests first: a new request is not held up behind every published one's check.
    const requests = d.requests.list();
    for (const request of requests) if (!request.status?.cidr) d.requestQueue.add(objectKey(request));
    for (const request of requests) if (request.status?.cidr) d.requestQueue.add(objectKey(request));
    for (const allocation of d.allocations.list()) d.allocationQueue.add(objectKey(allocation));
  }

  onRangeChange(range: RangeObject, old?: RangeObject): void {
    const change = rangeChanged(range, old);
    if (change === "now") this.c.d.rangeQueue.add(objectKey(range));
    else if (change === "later")
      this.c.d.rangeQueue.addAfter(objectKey(range), this.c.d.rangeStatusDelayMs ?? 1000);
  }

  onRangeDelete(range: RangeObject): void {
    this.c.d.rangeQueue.add(objectKey(range));
  }

  /** A namespace's labels decide a ClusterIPAMRange's consent: its requests of cluster ranges decide again. */
  onNamespaceChange(namespace: { metadata: ObjectMeta }, old?: { metadata: ObjectMeta }): void {
    if (old && sameLabels(old.metadata.labels, namespace.metadata.labels)) return;
    const { d } = this.c;
    for (const request of d.requests.byIndex(REQUESTS_BY_CLUSTER_NAMESPACE, namespace.metadata.name ?? "")) {
      d.requestQueue.add(objectKey(request));
    }
  }

  onRequestChange(request: IPAMRequest, old?: IPAMRequest): void {
    if (requestChanged(request, old)) this.c.d.requestQueue.add(objectKey(request));
  }

  onRequestDelete(request: IPAMRequest): void {
    const { d, ledger } = this.c;
    const ref = rangeRefOf(request);
    if (!isInvalid(ref)) {
      // A range being deleted may have been waiting for this request.
      d.rangeQueue.add(poolKey(ref));
      ledger.find(poolKey(ref))?.busy.delete(objectKey(request));
    }
    // Gone: its records are garbage now (collected), and claims without a record are released here.
    const uid = request.metadata.uid ?? "";
    ledger.releaseUnrecorded(uid);
    for (const allocation of d.allocations.byIndex(ALLOCATIONS_BY_REQUEST, uid)) {
      d.allocationQueue.add(objectKey(allocation));
    }
    for (const block of ledger.blocksOf(uid)) {
      const state = ledger.stateForBlock(block);
      if (state) d.allocationQueue.add(state.recordKey(block.objectName));
    }
  }

  onAllocationUpsert(allocation: IPAMAllocation): void {
    const { d, ledger } = this.c;
    const cidr = parseHeldCidr(allocation.spec?.cidr ?? "");
    const pool = this.poolOf(allocation);
    const request = allocation.spec?.request;
    const canonical =
      cidr &&
      pool &&
      allocation.spec.cidr === cidr.toString() &&
      allocation.metadata.name === recordName(pool, allocation.spec.cidr);
    if (!pool && isForeignClusterRecord(allocation, ledger.clusterAllocationNamespace)) {
      // Another controller's record: garbage collection reports it (and leaves it alone).
      d.allocationQueue.add(objectKey(allocation));
      return;
    }
    if (!cidr || !pool || !request || !canonical) {
      // Only a record named by its block guards it (AlreadyExists); any other name is not kubipam's.
      d.log.warn("ignoring malformed IPAMAllocation", { allocation: objectKey(allocation) });
      d.allocationQueue.add(objectKey(allocation));
      return;
    }
    const state = ledger.state(pool);
    const entry = ledger.record(state, heldBlockOf(allocation, state.key, cidr));
    // A record that loses an overlap leaves the ledger contested; garbage collection resolves it.
    if (!entry) return;
    // A record whose holder this process has not seen, or that published another block, may be
    // garbage (a stale writer's claim): garbage collection decides on a live read.
    const holder = holderOfRecord(this.c, allocation).cached(entry.requestKey, entry.requestUid);
    const published = holder?.published;
    if (!holder || (published && published !== allocation.spec.cidr)) {
      d.allocationQueue.add(objectKey(allocation));
    }
  }

  onAllocationDelete(allocation: IPAMAllocation): void {
    const { ledger } = this.c;
    const cidr = parseHeldCidr(allocation.spec?.cidr ?? "");
    const pool = this.poolOf(allocation);
    if (!cidr || !pool) return;
    const state = ledger.find(poolKey(pool));
    const block = state?.held(cidr);
    // A claim in flight is this process's own, not yet visible object: leave it alone.
    if (!state || !block || block.phase === "claiming") return;
    if (block.requestUid !== allocation.spec.request.uid) return;
    if (block.objectUid && block.objectUid !== allocation.metadata.uid) return;
    // The record of a live request went (its finalizer removed by hand): keep the block. The request's
    // reconcile writes the record again if it published the block, else revokes its claim first (a
    // publication may be on its way) and only then lets the block go.
    if (this.liveHolderOf(allocation)) {
      ledger.unrecorded(block);
      holderOfRecord(this.c, allocation).queue(block.requestKey);
      return;
    }
    ledger.release(state, block);
  }

  /** The pool a record belongs to (undefined: not a record kubipam could have written). */
  private poolOf(allocation: IPAMAllocation) {
    return poolOfRecord(allocation, this.c.ledger.clusterAllocationNamespace);
  }

  /** Whether the record's live holder published exactly this record's block. */
  private publishedBy(allocation: IPAMAllocation): boolean {
    return this.liveHolderOf(allocation)?.published === allocation.spec.cidr;
  }

  /** The record's holder, if the cache has it (same uid) and it still holds. */
  private liveHolderOf(allocation: IPAMAllocation): LiveHolder | undefined {
    const ref = allocation.spec?.request;
    return ref && holderOfRecord(this.c, allocation).cached(`${ref.namespace}/${ref.name}`, ref.uid);
  }
}
