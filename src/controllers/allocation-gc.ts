// Garbage collection of IPAMAllocation records: deletes a record that guards nothing — its request is
// gone or holds another block, it lost an overlap to the holder in the ledger, or it is not named by
// its block. A record that carries a waiting request's claim is revoked first (Records.revoke), so no
// stale writer can still publish it. Watches: IPAMAllocation (every record once at start, malformed or
// conflicting ones, records whose request this process has not seen); queued also when a request goes.
// Records of cluster ranges in another namespace than this controller's are reported, never deleted.

import { poolKey, poolOfRecord } from "../api/pool-ref.ts";
import type { IPAMAllocation } from "../api/types.ts";
import type { Cidr } from "../ipam/index.ts";
import { objectKey } from "../runtime/kube.ts";
import type { Context } from "./context.ts";
import { announceRelease } from "./cooling-state.ts";
import { isForeignClusterRecord, reportForeignClusterRecord } from "./foreign-records.ts";
import { holderOfBlock, holderOfRecord, type LiveHolder } from "./holders.ts";
import { type HeldBlock, type PoolState, parseHeldCidr } from "./pool-state.ts";
import { statusOf } from "./ports.ts";
import { heldBlockOf, type Records } from "./records.ts";

export class AllocationCollector {
  /** Foreign records reported, by key: the uid reported (each record once, not on every resync). */
  private readonly reportedForeign = new Map<string, string>();

  constructor(
    private readonly c: Context,
    private readonly records: Records,
  ) {}

  async reconcile(key: string): Promise<void> {
    const { d, ledger } = this.c;
    const allocation = d.allocations.get(key);
    if (!allocation) {
      this.reportedForeign.delete(key);
      return;
    }
    // Another controller's (a different --cluster-allocation-namespace): never ours to delete.
    if (isForeignClusterRecord(allocation, ledger.clusterAllocationNamespace)) {
      return this.reportForeignOnce(key, allocation);
    }
    const request = allocation.spec?.request;
    if (!request?.uid) return this.collect(allocation);
    const cidr = parseHeldCidr(allocation.spec.cidr);
    const pool = poolOfRecord(allocation, ledger.clusterAllocationNamespace);
    const state = pool && ledger.find(poolKey(pool));
    const entry = cidr && state?.held(cidr);
    if (entry && entry.requestUid === request.uid && entry.phase === "claiming") return; // ours, in flight
    if (entry && state && isEntryOf(entry, allocation)) {
      if (this.guardsCached(allocation)) return;
      // The cache may lag behind: decide on a live read.
      const holder = await this.liveHolder(allocation);
      const published = holder?.published;
      if (holder && (!published || published === allocation.spec.cidr)) return;
      return this.release(allocation, state, entry);
    }
    await this.collectLoser(allocation, state);
  }

  private reportForeignOnce(key: string, allocation: IPAMAllocation): void {
    const uid = allocation.metadata.uid ?? "";
    if (this.reportedForeign.get(key) === uid) return;
    this.reportedForeign.set(key, uid);
    reportForeignClusterRecord(this.c, allocation);
  }

  /** Collects the record of a holder that is gone and frees its block. */
  private async release(allocation: IPAMAllocation, state: PoolState, entry: HeldBlock): Promise<void> {
    // With a cooldown, status.cooling names the block before its record goes.
    await announceRelease(this.c, state, entry.cidr);
    try {
      await this.collect(allocation);
    } catch (err) {
      state.cooling.abandon(entry.cidr);
      throw err;
    }
    this.c.ledger.release(state, entry);
  }

  /** A record the ledger does not hold (it lost an overlap, or its name holds another record now). */
  private async collectLoser(allocation: IPAMAllocation, state: PoolState | undefined): Promise<void> {
    const holder = await this.liveHolder(allocation);
    const cidr = parseHeldCidr(allocation.spec.cidr);
    const published = holder?.published;
    const name = allocation.metadata.name ?? "";
    if (holder && state && cidr && published === allocation.spec.cidr) {
      // Its request published it (confirmed by an earlier fence holder): a holder, never collected.
      return this.yieldTo(allocation, state, cidr);
    }
    if (holder && !published && state && cidr) {
      // It names a waiting holder: revoke its claim first, so no stale writer publishes it.
      const claim = heldBlockOf(allocation, state.key, cidr);
      await holder.revoke(state, claim, `the record ${name} overlaps another block`);
      holderOfRecord(this.c, allocation).queue(claim.requestKey);
    } else {
      await this.collect(allocation);
    }
    state?.resolved(name);
  }

  /**
   * A published record that lost an overlap in this process's ledger: the unpublished claims it
   * overlaps are revoked and it takes their place. Two published overlapping blocks cannot be undone
   * here: they are reported and stay contested (nothing more is published over them).
   */
  private async yieldTo(allocation: IPAMAllocation, state: PoolState, cidr: Cidr): Promise<void> {
    const { d } = this.c;
    let doubled = false;
    for (const winner of state.overlapping(cidr)) {
      const holders = holderOfBlock(this.c, winner);
      // Even one being deleted: a stale publication to it must fail before its block is given away.
      const own = await holders.live(winner.requestKey, winner.requestUid, true);
      if (own?.published === winner.cidr.toString()) {
        doubled = true;
        d.log.error("two published holders overlap", {
          range: state.key,
          a: winner.requestKey,
          b: objectKey(allocation),
        });
        continue;
      }
      if (own) await own.revoke(state, winner, `${winner.cidr} overlaps the published ${cidr}`);
      else await this.records.giveBack(state, winner);
      holders.queue(winner.requestKey);
    }
    if (!doubled && this.records.record(state, allocation)) state.resolved(allocation.metadata.name ?? "");
  }

  /** The record's holder as the API server has it now, if it is still that holder and holds. */
  private liveHolder(allocation: IPAMAllocation): Promise<LiveHolder | undefined> {
    const ref = allocation.spec.request;
    return holderOfRecord(this.c, allocation).live(`${ref.namespace}/${ref.name}`, ref.uid);
  }

  /** Whether the cached holder still holds (or is about to publish) this record's block. */
  private guardsCached(allocation: IPAMAllocation): boolean {
    const ref = allocation.spec.request;
    const cached = holderOfRecord(this.c, allocation).cached(`${ref.namespace}/${ref.name}`, ref.uid);
    if (!cached) return false;
    return !cached.published || cached.published === allocation.spec.cidr;
  }

  private async collect(allocation: IPAMAllocation): Promise<void> {
    this.c.d.log.info("deleting orphaned IPAMAllocation", {
      allocation: objectKey(allocation),
      cidr: allocation.spec?.cidr,
    });
    try {
      await this.c.d.writer.deleteAllocation(
        allocation.metadata.namespace ?? "",
        allocation.metadata.name ?? "",
        allocation.metadata.uid,
      );
    } catch (err) {
      // 409: the name holds a newer allocation already; its own events will bring it here if needed.
      if (statusOf(err) !== 409) throw err;
    }
  }
}

/** Whether the ledger's entry is this very record (same holder, same object). */
function isEntryOf(entry: HeldBlock, allocation: IPAMAllocation): boolean {
  return (
    entry.requestUid === allocation.spec.request.uid &&
    (entry.objectUid ?? allocation.metadata.uid) === allocation.metadata.uid
  );
}
