// The in-memory picture of one IPAMRange: its parsed spec, a ledger of the blocks held in it, and the
// allocator derived from both. The ledger mirrors the IPAMAllocation objects (the authority) plus the
// claims this process is creating; the allocator is only a fast index over the ledger.

import type { ValidRangeSpec } from "../api/validation.ts";
import { Allocator, Cidr, type Exclusion } from "../ipam/index.ts";
import { CoolingState } from "./cooling-state.ts";

export interface HeldBlock {
  cidr: Cidr;
  requestUid: string;
  /** `namespace/name` of the request holding the block. */
  requestKey: string;
  /** Name of the IPAMAllocation object (in the range's namespace). */
  objectName: string;
  /** `namespace/name` of the range whose ledger holds the block. */
  rangeKey: string;
  /** `claiming`: this process is creating the object; `held`: the object exists. */
  phase: "claiming" | "held";
  /** uid of the IPAMAllocation object once known: deletes are conditional on it. */
  objectUid?: string;
}

export class PoolState {
  /** Spec in force, or undefined while the range is missing or invalid. */
  spec: ValidRangeSpec | undefined;
  invalidMessage = "";
  exists = false;
  generation: number | undefined;
  deleting = false;
  uid = "";
  /** Requests waiting for space, woken when space is freed or the pool grows. */
  readonly busy = new Set<string>();
  private readonly blocks = new Map<string, HeldBlock>();
  /** Records that lost an overlap and are not resolved yet, by object name. */
  private readonly losers = new Map<string, Cidr>();
  private allocator: Allocator | undefined;
  private cursors: string[] = [];
  /** Cooldowns: restored from status.cooling, and releases announced before their record goes. */
  readonly cooling = new CoolingState();

  constructor(
    readonly namespace: string,
    readonly name: string,
  ) {}

  get key(): string {
    return `${this.namespace}/${this.name}`;
  }

  /**
   * Applies a (new) valid spec; returns whether more space may have become allocatable. The persisted
   * cursors and cooldowns (status) count only until the allocator is built: afterwards it is the source.
   */
  configure(spec: ValidRangeSpec, persisted: { roundRobin?: string[]; cooling?: string[] } = {}): boolean {
    const before = this.spec;
    this.spec = spec;
    this.invalidMessage = "";
    if (!this.allocator) {
      if (persisted.roundRobin) this.cursors = persisted.roundRobin;
      this.cooling.restore(persisted.cooling);
      return true;
    }
    if (!before || before.family !== spec.family) {
      // Blocks of another family cannot live in this allocator: start over from the ledger.
      this.cooling.restore(this.allocator.exportCooling());
      this.allocator = undefined;
      return true;
    }
    const grew = !sameBlocks(before.blocks, spec.blocks);
    if (grew) this.allocator.setPool(spec.blocks);
    if (before.mode !== spec.mode) this.allocator.setMode(spec.mode);
    // New exclusions over live blocks act like a shrink: the blocks stay until released.
    const excluded = !sameExclusions(before.exclusions, spec.exclusions);
    if (excluded) this.allocator.setExclusions(spec.exclusions);
    return grew || excluded || before.mode !== spec.mode;
  }

  invalidate(message: string): void {
    this.invalidMessage = message;
  }

  /**
   * The allocator, built from the ledger on first use, entering blocks in ledger order (records of
   * published blocks first). Blocks that no longer fit the pool are kept as pending removals; blocks
   * that overlap an earlier one leave the ledger and are returned as conflicts.
   */
  ensureAllocator(): { allocator: Allocator; conflicts: HeldBlock[] } | undefined {
    const spec = this.spec;
    if (!spec || spec.family === undefined) return undefined;
    if (this.allocator) return { allocator: this.allocator, conflicts: [] };
    const entries = [...this.blocks.values()].filter((b) => b.cidr.family === spec.family);
    const held = entries.map((b) => b.cidr);
    // Restored cooling space under a held block is dropped (the holder wins); space excluded now stays excluded.
    const options = {
      family: spec.family,
      blocks: spec.blocks,
      mode: spec.mode,
      exclusions: spec.exclusions,
      cooling: this.cooling.restoredBlocks(spec.family),
    };
    let built: ReturnType<typeof Allocator.rebuild>;
    try {
      built = Allocator.rebuild({ ...options, cursors: this.cursors }, held, { keepOutside: true });
    } catch {
      // Corrupt persisted cursors must not block the range: start them afresh.
      built = Allocator.rebuild(options, held, { keepOutside: true });
    }
    this.allocator = built.allocator;
    const conflicts: HeldBlock[] = [];
    for (const r of built.rejected) {
      const block = this.blocks.get(r.cidr.toString());
      if (!block) continue;
      this.blocks.delete(r.cidr.toString());
      conflicts.push(block);
    }
    return { allocator: built.allocator, conflicts };
  }

  /** A record that lost an overlap: until it is resolved, no block overlapping it is published. */
  contest(objectName: string, cidr: Cidr): void {
    this.losers.set(objectName, cidr);
  }

  resolved(objectName: string): void {
    this.losers.delete(objectName);
  }

  isContested(cidr: Cidr): boolean {
    for (const loser of this.losers.values()) if (loser.overlaps(cidr)) return true;
    return false;
  }

  /** The held blocks overlapping `cidr` (a scan: conflicts are rare). */
  overlapping(cidr: Cidr): HeldBlock[] {
    return [...this.blocks.values()].filter((b) => b.cidr.overlaps(cidr));
  }

  currentAllocator(): Allocator | undefined {
    return this.allocator;
  }

  held(cidr: Cidr): HeldBlock | undefined {
    return this.blocks.get(cidr.toString());
  }

  heldBlocks(): IterableIterator<HeldBlock> {
    return this.blocks.values();
  }

  get heldCount(): number {
    return this.blocks.size;
  }

  /** Records a block already marked in the allocator by this process's allocate/reserve. */
  recordClaim(block: HeldBlock): void {
    this.blocks.set(block.cidr.toString(), block);
  }

  /**
   * Records a block seen in an IPAMAllocation object and returns the entry now in the ledger. An
   * entry of another holder is replaced, never mutated, so a stale reference to it cannot release the
   * new holder's block. Returns undefined if the block collides in the allocator (a conflict).
   */
  recordHeld(block: HeldBlock): HeldBlock | undefined {
    const key = block.cidr.toString();
    const existing = this.blocks.get(key);
    if (existing && existing.requestUid === block.requestUid) {
      existing.phase = "held";
      if (block.objectUid) existing.objectUid = block.objectUid;
      return existing;
    }
    if (!existing && this.allocator && !this.allocator.isAllocated(block.cidr)) {
      try {
        // An existing holder: outside the pool it is a pending removal; over an exclusion added
        // after it, or over cooling space, it keeps its block (like a shrink).
        this.allocator.adopt(block.cidr);
      } catch {
        return undefined;
      }
    }
    this.blocks.set(key, block);
    return block;
  }

  /**
   * Forgets exactly this entry and frees its block; with `coolUntil` the block cools down until then
   * (an announced release keeps its announced end). Returns false if the ledger holds another.
   */
  drop(block: HeldBlock, coolUntil?: number): boolean {
    const key = block.cidr.toString();
    const announced = this.cooling.take(block.cidr);
    if (this.blocks.get(key) !== block) return false;
    this.blocks.delete(key);
    if (this.allocator?.isAllocated(block.cidr)) {
      const until = coolUntil === undefined ? undefined : (announced ?? coolUntil);
      this.allocator.release(block.cidr, until === undefined ? undefined : { coolUntil: until });
    }
    return true;
  }

  /** When a block released at `now` (ms) stops cooling down; undefined without a cooldown. */
  coolUntil(now: number): number | undefined {
    const seconds = this.spec?.cooldownSeconds ?? 0;
    return seconds > 0 ? now + seconds * 1000 : undefined;
  }

  /** status.cooling: the cooling blocks, and releases announced but not done yet. */
  exportCooling(): string[] {
    return this.cooling.export(this.allocator);
  }

  /** Cursors to persist: the allocator's when built, else those restored from status. */
  exportCursors(): string[] {
    return this.allocator ? this.allocator.exportCursors() : this.cursors;
  }
}

function sameExclusions(a: readonly Exclusion[], b: readonly Exclusion[]): boolean {
  return a.length === b.length && a.every((x, i) => x.entry === b[i]?.entry);
}

function sameBlocks(a: Cidr[], b: Cidr[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i] as Cidr));
}

export function parseHeldCidr(s: string): Cidr | undefined {
  try {
    return Cidr.parse(s);
  } catch {
    return undefined;
  }
}
