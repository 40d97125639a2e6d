// The one owner of allocation state: per range its PoolState (spec, held blocks, allocator, waiting
// requests), and an index of held blocks by request. Every change to held blocks goes through here;
// what follows from a change (wake waiting requests, write the range's usage, count a release) is
// reported to the listener, which only queues work.

import { type PoolRef, poolKey, recordNamespace } from "../api/pool-ref.ts";
import type { HolderKind } from "../api/types.ts";
import type { Allocator, Cidr } from "../ipam/index.ts";
import { type HeldBlock, PoolState } from "./pool-state.ts";

export interface LedgerListener {
  /** Space was freed in the range (`all`: or the range itself changed): waiting requests may proceed. */
  wake(state: PoolState, all: boolean): void;
  /** The range's usage changed: its status is due. */
  touch(state: PoolState): void;
  /** A held block was released. */
  released(state: PoolState): void;
  /** A record lost an overlap (the block is out of the ledger): collect it, revoking its claim first. */
  conflict(state: PoolState, block: HeldBlock): void;
}

/** Who a claim is for. */
export interface Holder {
  uid: string;
  /** `namespace/name` of the request (or claim). */
  key: string;
  /** Absent: an IPAMRequest. */
  kind?: HolderKind;
}

export class Ledger {
  private readonly states = new Map<string, PoolState>();
  /** Blocks per request uid, across ranges: a request normally holds one (kept bare, not in a Set). */
  private readonly byRequest = new Map<string, HeldBlock | Set<HeldBlock>>();

  constructor(
    private readonly listener: LedgerListener,
    /** Where the records of every ClusterIPAMRange live (shared by all controllers of a cluster). */
    readonly clusterAllocationNamespace: string,
    /** The clock of cooldowns (ms since the epoch). */
    private readonly now: () => number = Date.now,
  ) {}

  /** The state of a pool, created on first use. */
  state(ref: PoolRef): PoolState {
    const key = poolKey(ref);
    let state = this.states.get(key);
    if (!state) {
      state = new PoolState(ref, recordNamespace(ref, this.clusterAllocationNamespace));
      this.states.set(key, state);
    }
    return state;
  }

  /** The state of a pool by its poolKey, if the ledger has one. */
  find(key: string): PoolState | undefined {
    return this.states.get(key);
  }

  ranges(): IterableIterator<PoolState> {
    return this.states.values();
  }

  /** The range state whose ledger holds exactly this entry (none once it was replaced or dropped). */
  stateForBlock(block: HeldBlock): PoolState | undefined {
    const state = this.states.get(block.rangeKey);
    return state?.held(block.cidr) === block ? state : undefined;
  }

  blocksOf(uid: string): HeldBlock[] {
    const blocks = this.byRequest.get(uid);
    return blocks === undefined ? [] : blocks instanceof Set ? [...blocks] : [blocks];
  }

  /**
   * The range's allocator, built from its held blocks on first use. A block that overlaps an earlier
   * one (records of published blocks come first) leaves the ledger as a contested conflict.
   */
  allocator(state: PoolState): Allocator | undefined {
    const built = state.ensureAllocator();
    if (!built) return undefined;
    for (const block of built.conflicts) this.lost(state, block);
    return built.allocator;
  }

  /** A record that lost an overlap: out of the ledger; nothing overlapping it is published until resolved. */
  lost(state: PoolState, block: HeldBlock): void {
    this.unindex(block);
    state.contest(block.objectName, block.cidr);
    this.listener.conflict(state, block);
  }

  /**
   * Releases the claims of a request that went and have no record (nothing else would). They were
   * never published, so nobody can be using them: no cooldown.
   */
  releaseUnrecorded(uid: string): void {
    for (const block of this.blocksOf(uid)) {
      const state = this.stateForBlock(block);
      if (state && block.phase === "claiming") this.release(state, block, { cool: false });
    }
  }

  /** Enters a block already marked in the allocator (allocate/reserve) as a claim in flight. */
  claim(state: PoolState, holder: Holder, cidr: Cidr, objectName: string): HeldBlock {
    const block: HeldBlock = {
      cidr,
      requestUid: holder.uid,
      requestKey: holder.key,
      ...(holder.kind && holder.kind !== "IPAMRequest" ? { holderKind: holder.kind } : {}),
      objectName,
      rangeKey: state.key,
      phase: "claiming",
    };
    state.recordClaim(block);
    this.index(block);
    this.listener.touch(state);
    return block;
  }

  /**
   * Records a block seen in an IPAMAllocation object; returns the entry now in the ledger, or
   * undefined when it overlaps another holder's block (the incumbent wins).
   */
  record(state: PoolState, block: HeldBlock): HeldBlock | undefined {
    const known = state.held(block.cidr);
    const entry = state.recordHeld(block);
    if (!entry) {
      this.lost(state, block);
      return undefined;
    }
    if (known && known !== entry) this.unindex(known);
    this.index(entry);
    this.listener.touch(state);
    return entry;
  }

  /** Takes back a claim whose object was never created (or was lost to another holder). */
  undoClaim(state: PoolState, block: HeldBlock): void {
    this.unindex(block);
    if (!state.drop(block)) return;
    // A range status written while the claim was in flight counted it: write the usage again.
    this.listener.wake(state, false);
    this.listener.touch(state);
  }

  /**
   * Frees exactly this entry (a stale reference to a replaced entry frees nothing); with a cooldown
   * on the range the block cools down first (§7), unless it was never published (`cool: false`).
   */
  release(state: PoolState, block: HeldBlock, options: { cool: boolean } = { cool: true }): void {
    this.unindex(block);
    if (!state.drop(block, options.cool ? state.coolUntil(this.now()) : undefined)) return;
    this.listener.released(state);
    this.listener.wake(state, false);
    this.listener.touch(state);
    this.forgetIfEmpty(state);
  }

  /**
   * Ends the range's cooldowns that are due; the freed space wakes waiting requests. Returns when the
   * next cooldown ends (ms since the epoch), if one is left.
   */
  expireCooling(state: PoolState): number | undefined {
    const allocator = state.currentAllocator();
    if (!allocator || allocator.nextCoolingEnd() === undefined) return undefined;
    if (allocator.expire(this.now()).length > 0) {
      this.listener.wake(state, false);
      this.listener.touch(state);
    }
    return allocator.nextCoolingEnd();
  }

  /** The record of a held block went while its holder lives: the block stays, awaiting a new record. */
  unrecorded(block: HeldBlock): void {
    block.phase = "claiming";
    block.objectUid = undefined;
  }

  /** Forgets an entry that no longer belongs to this process's view (its name holds another record). */
  forget(block: HeldBlock): void {
    this.unindex(block);
  }

  forgetIfEmpty(state: PoolState): void {
    if (!state.exists && state.heldCount === 0 && state.busy.size === 0) this.states.delete(state.key);
  }

  /** Figures for the views and tests. */
  snapshot(): { range: string; held: string[]; busy: string[] }[] {
    return [...this.states.values()].map((s) => ({
      range: s.key,
      held: [...s.heldBlocks()].map((b) => b.cidr.toString()),
      busy: [...s.busy],
    }));
  }

  private index(block: HeldBlock): void {
    const blocks = this.byRequest.get(block.requestUid);
    if (blocks === undefined) this.byRequest.set(block.requestUid, block);
    else if (blocks instanceof Set) blocks.add(block);
    else if (blocks !== block) this.byRequest.set(block.requestUid, new Set([blocks, block]));
  }

  private unindex(block: HeldBlock): void {
    const blocks = this.byRequest.get(block.requestUid);
    if (blocks === block) this.byRequest.delete(block.requestUid);
    if (!(blocks instanceof Set)) return;
    blocks.delete(block);
    if (blocks.size === 0) this.byRequest.delete(block.requestUid);
  }
}
