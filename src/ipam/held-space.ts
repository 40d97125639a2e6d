import type { Family } from "./address.ts";
import type { BuddyAllocator } from "./buddy-allocator.ts";
import { Cidr } from "./cidr.ts";
import { blockKey, type CoolingBlock, CoolingList, checkTime } from "./cooling.ts";
import { IpamError } from "./errors.ts";
import type { ExclusionSet } from "./exclusions.ts";
import { coverSpans, intersect, mergeSpans, type Span, spanOf, subtract } from "./spans.ts";

/**
 * Space the allocator holds in its buddy core like allocations, though no caller holds it:
 * excluded pool space not under an allocation, and cooling blocks. Holding it in the core makes
 * automatic allocation skip it at no cost; keeping it apart here keeps it out of the allocations,
 * out of callers' reach (they cannot release it) and counted apart in the usage.
 */
export class HeldSpace {
  /** Excluded pool space not under an allocation: block key → block. */
  readonly excluded = new Map<string, Cidr>();
  excludedAddresses = 0n;
  readonly cooling = new CoolingList();

  constructor(
    private readonly core: BuddyAllocator,
    private readonly family: Family,
  ) {}

  get empty(): boolean {
    return this.excluded.size === 0 && this.cooling.size === 0;
  }

  isHeld(cidr: Cidr): boolean {
    if (this.empty) return false;
    return this.excluded.has(blockKey(cidr)) || this.cooling.get(cidr) !== undefined;
  }

  holdExcluded(block: Cidr): void {
    this.core.reserve(block);
    this.noteExcluded(block);
  }

  private noteExcluded(block: Cidr): void {
    this.excluded.set(blockKey(block), block);
    this.excludedAddresses += block.size;
  }

  unholdExcluded(block: Cidr): void {
    this.core.release(block);
    this.excluded.delete(blockKey(block));
    this.excludedAddresses -= block.size;
  }

  holdCooling(block: Cidr, until: number): void {
    this.core.reserve(block);
    this.cooling.add({ cidr: block, until });
  }

  unholdCooling(block: CoolingBlock): void {
    this.core.release(block.cidr);
    this.cooling.remove(block);
  }

  /** Reserves `cidr` in the core if it is free there. */
  tryReserve(cidr: Cidr): boolean {
    try {
      this.core.reserve(cidr);
      return true;
    } catch (error) {
      if (error instanceof IpamError) return false;
      throw error;
    }
  }

  /** Frees everything held in the core; returns the cooling blocks (to hold again after a change). */
  releaseAll(): CoolingBlock[] {
    for (const block of [...this.excluded.values()]) this.unholdExcluded(block);
    const cooling = this.cooling.byTime();
    for (const block of cooling) this.unholdCooling(block);
    return cooling;
  }

  /**
   * Holds the excluded pool space not under an allocation, then the pool space of the given cooling
   * blocks outside exclusions and allocations (nothing is held when called). Costs O(W) per block
   * of the buddy tree inside the exclusions and cooling blocks, not O(allocations). Returns the
   * prefix of the largest pool block outside the exclusions (W + 1: none; 0: no exclusions).
   */
  holdAll(exclusions: ExclusionSet, cooling: readonly CoolingBlock[]): number {
    for (const block of cooling) {
      if (!(block.cidr instanceof Cidr) || block.cidr.family !== this.family) {
        throw new IpamError(
          "InvalidCooling",
          `invalid cooling block ${String(block.cidr)}: not in the range's family`,
        );
      }
      checkTime(block.until, "cooldown end");
    }
    const excluded = exclusions.spans;
    if (excluded.length === 0 && cooling.length === 0) return 0;
    const pool = mergeSpans(this.core.blocks().map(spanOf));
    let largestUsablePrefix = 0;
    if (excluded.length > 0) {
      const usable = coverSpans(
        this.family,
        pool.flatMap((span) => subtract(span, excluded)),
      );
      largestUsablePrefix = this.core.width + 1;
      for (const block of usable) if (block.prefix < largestUsablePrefix) largestUsablePrefix = block.prefix;
    }
    // Only the free parts: allocations over exclusions keep their space, and of nested cooling
    // entries (a corrupt store) the first wins.
    for (const span of excluded) {
      for (const inPool of intersect(span, pool)) {
        for (const block of coverSpans(this.family, [inPool])) {
          for (const part of this.core.reserveFree(block)) this.noteExcluded(part);
        }
      }
    }
    for (const { cidr, until } of cooling) {
      for (const inPool of intersect(spanOf(cidr), pool)) {
        for (const block of coverSpans(this.family, subtract(inPool, excluded))) {
          for (const part of this.core.reserveFree(block)) this.cooling.add({ cidr: part, until });
        }
      }
    }
    return largestUsablePrefix;
  }

  /** Holds the excluded parts of `spans` (free pool space) and, with `coolUntil`, cools the rest. */
  holdReleased(spans: readonly Span[], exclusions: ExclusionSet, coolUntil: number | undefined): void {
    for (const span of spans) {
      for (const block of coverSpans(this.family, intersect(span, exclusions.spans))) {
        this.holdExcluded(block);
      }
      if (coolUntil === undefined) continue;
      for (const block of coverSpans(this.family, subtract(span, exclusions.spans))) {
        this.holdCooling(block, coolUntil);
      }
    }
  }

  /**
   * The end time of the cooldown after which `fits()` holds if cooldowns end in order and nothing
   * else changes; undefined if it never does. The core is left as it was.
   */
  coolingFitTime(fits: () => boolean): number | undefined {
    const released: CoolingBlock[] = [];
    let until: number | undefined;
    for (const block of this.cooling.byTime()) {
      this.core.release(block.cidr);
      released.push(block);
      if (fits()) {
        until = block.until;
        break;
      }
    }
    for (const block of released) this.core.reserve(block.cidr);
    return until;
  }

  /** Whether only cooling space keeps `cidr` from being reserved; the core is left as it was. */
  onlyCoolingIn(cidr: Cidr, overlapping: readonly CoolingBlock[]): boolean {
    for (const block of overlapping) this.core.release(block.cidr);
    const free = this.tryReserve(cidr);
    if (free) this.core.release(cidr);
    for (const block of overlapping) this.core.reserve(block.cidr);
    return free;
  }

  /** Allocations (no held space) overlapping the exclusions, ascending. */
  allocationsOverlapping(exclusions: ExclusionSet): Cidr[] {
    if (exclusions.empty) return [];
    const found = new Map<string, Cidr>();
    for (const pending of this.core.pendingRemovals()) {
      if (exclusions.overlaps(spanOf(pending))) found.set(pending.toString(), pending);
    }
    const pool = mergeSpans(this.core.blocks().map(spanOf));
    for (const span of exclusions.spans) {
      for (const block of coverSpans(this.family, intersect(span, pool))) {
        for (const cidr of this.core.allocationsOverlapping(block)) {
          if (!this.isHeld(cidr)) found.set(cidr.toString(), cidr);
        }
      }
    }
    return [...found.values()].sort(compareCidrs);
  }

  checkConsistency(exclusions: ExclusionSet): void {
    let excluded = 0n;
    for (const block of this.excluded.values()) {
      excluded += block.size;
      if (!this.core.isAllocated(block) || !this.core.contains(block)) throw new Error(`${block} not held`);
      if (!exclusions.overlaps(spanOf(block))) throw new Error(`${block} held but not excluded`);
    }
    let cooling = 0n;
    for (const { cidr } of this.cooling.byTime()) {
      cooling += cidr.size;
      if (!this.core.isAllocated(cidr) || !this.core.contains(cidr)) throw new Error(`${cidr} not cooling`);
    }
    if (excluded !== this.excludedAddresses || cooling !== this.cooling.addresses) {
      throw new Error("excluded or cooling address counts are off");
    }
  }
}

/** The parts of `outer` outside `inner`, as blocks. */
export function remainder(family: Family, outer: Cidr, inner: Cidr): Cidr[] {
  return coverSpans(family, subtract(spanOf(outer), [spanOf(inner)]));
}

export function compareCidrs(a: Cidr, b: Cidr): number {
  if (a.startKey !== b.startKey) return a.startKey < b.startKey ? -1 : 1;
  return a.prefix - b.prefix;
}
