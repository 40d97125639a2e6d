import type { Family } from "./address.ts";
import { BuddyAllocator, type BuddyOptions, type RebuildOptions, type Rejection } from "./buddy-allocator.ts";
import { Cidr } from "./cidr.ts";
import { type CoolingBlock, checkTime, formatCooling, isoTime } from "./cooling.ts";
import { IpamError } from "./errors.ts";
import { type Exclusion, ExclusionSet } from "./exclusions.ts";
import { compareCidrs, HeldSpace, remainder } from "./held-space.ts";
import type { Mode } from "./pool.ts";
import { intersect, mergeSpans, spanOf } from "./spans.ts";

export type { RebuildOptions, Rejection } from "./buddy-allocator.ts";

export interface AllocatorOptions extends BuddyOptions {
  /** Space never handed out (`parseExclusions`, `parseGateway`); parts outside the pool do nothing. */
  exclusions?: readonly Exclusion[] | undefined;
  /** Cooling blocks to restore (`parseCooling(exportCooling())` after a restart). */
  cooling?: readonly CoolingBlock[] | undefined;
}

/** Exact address counts: total = allocated + free + excluded + cooling. */
export interface Usage {
  /** Addresses in the pool. */
  total: bigint;
  /** Pool addresses held by allocations (also in-pool parts of pending removals, and excluded space under an allocation). */
  allocated: bigint;
  /** Pool addresses in free blocks. */
  free: bigint;
  /** Excluded pool addresses not under an allocation. */
  excluded: bigint;
  /** Pool addresses cooling down after a release. */
  cooling: bigint;
  /** Prefix of the largest free block; undefined when nothing is free. */
  largestFree: number | undefined;
  freeBlockCount: number;
}

/** The current time for operations that let cooldowns end: ms since the epoch, from the caller. */
export interface TimeOptions {
  now?: number | undefined;
}

export interface ReleaseOptions {
  /** Keep the released space out of automatic allocation until this time (ms since the epoch). */
  coolUntil?: number | undefined;
}

export interface RebuildResult {
  allocator: Allocator;
  rejected: Rejection[];
}

/**
 * The allocation engine (§4, §7): a buddy allocator plus exclusions and cooling blocks. Both are
 * held in the buddy tree like allocations, so automatic allocation skips them at no cost, but are
 * tracked here, so callers never see or release them and usage counts them apart. No clock inside:
 * cooldowns end only when the caller passes the time (`expire`, or `now` in the options).
 */
export class Allocator {
  static get generalIPv6KeysForTests(): boolean {
    return BuddyAllocator.generalIPv6KeysForTests;
  }
  static set generalIPv6KeysForTests(value: boolean) {
    BuddyAllocator.generalIPv6KeysForTests = value;
  }
  readonly family: Family;
  readonly width: number;
  private core: BuddyAllocator;
  private exclusions: ExclusionSet;
  private held: HeldSpace;
  /** Prefix of the largest pool block outside the exclusions (W + 1: none; 0: no exclusions). */
  private largestUsablePrefix: number;

  constructor(options: AllocatorOptions) {
    this.core = new BuddyAllocator(options);
    this.family = this.core.family;
    this.width = this.core.width;
    this.exclusions = new ExclusionSet(this.family, options.exclusions ?? []);
    this.held = new HeldSpace(this.core, this.family);
    this.largestUsablePrefix = this.held.holdAll(this.exclusions, options.cooling ?? []);
  }

  /** Rebuilds the state from stored allocations; entries that cannot be taken are listed, not thrown. */
  static rebuild(
    options: AllocatorOptions,
    allocations: readonly Cidr[],
    rebuildOptions: RebuildOptions = {},
  ): RebuildResult {
    const allocator = new Allocator({ ...options, exclusions: [], cooling: [] });
    const built = BuddyAllocator.rebuild(options, allocations, rebuildOptions);
    allocator.core = built.allocator;
    allocator.exclusions = new ExclusionSet(allocator.family, options.exclusions ?? []);
    allocator.held = new HeldSpace(built.allocator, allocator.family);
    allocator.largestUsablePrefix = allocator.held.holdAll(allocator.exclusions, options.cooling ?? []);
    return { allocator, rejected: built.rejected };
  }

  getMode(): Mode {
    return this.core.getMode();
  }

  setMode(mode: Mode): void {
    this.core.setMode(mode);
  }

  /** The canonical pool blocks, ascending. */
  blocks(): Cidr[] {
    return this.core.blocks();
  }

  // ---------------------------------------------------------------- allocation

  /** Allocates a block of prefix length `size` by the current mode (§4), skipping excluded and cooling space. */
  allocate(size: number, options?: TimeOptions): Cidr {
    if (options?.now !== undefined) this.expire(options.now);
    try {
      return this.core.allocate(size);
    } catch (error) {
      throw this.explainBusy(error, size);
    }
  }

  /**
   * Reserves the `index`-th block of prefix `size`, counted across the pool blocks in order (§3).
   * Like automatic allocation it never takes excluded (`Excluded`) or cooling (`Busy`) space.
   */
  allocateIndexed(index: bigint, size: number, options?: TimeOptions): Cidr {
    if (options?.now !== undefined) this.expire(options.now);
    const cidr = this.core.indexedBlock(index, size);
    this.checkExcluded(cidr);
    try {
      this.core.reserve(cidr);
      return cidr;
    } catch (error) {
      const overlapping = this.coolingBehind(error, cidr);
      if (overlapping.length === 0) throw error;
      if (!this.held.onlyCoolingIn(cidr, overlapping)) throw error;
      throw this.coolingBusy(
        error as IpamError,
        overlapping.reduce((latest, block) => Math.max(latest, block.until), 0),
      );
    }
  }

  /**
   * Reserves exactly `cidr` (an explicit request): it must lie inside the pool, overlap no
   * exclusion (`Excluded`, naming it) and no allocation (`Busy`). Cooling space is taken at once.
   */
  reserve(cidr: Cidr, options?: TimeOptions): void {
    if (options?.now !== undefined) this.expire(options.now);
    if (!this.exclusions.empty && this.core.contains(cidr)) this.checkExcluded(cidr);
    try {
      this.core.reserve(cidr);
    } catch (error) {
      const overlapping = this.coolingBehind(error, cidr);
      if (overlapping.length === 0) throw error;
      const held = this.held;
      for (const block of overlapping) held.unholdCooling(block);
      if (!held.tryReserve(cidr)) {
        for (const block of overlapping) held.holdCooling(block.cidr, block.until);
        throw error;
      }
      // The rest of a larger cooling block keeps cooling.
      for (const block of overlapping) {
        for (const part of remainder(this.family, block.cidr, cidr)) held.holdCooling(part, block.until);
      }
    }
  }

  /**
   * Records an existing allocation (a holder the caller knows of): (partly) outside the pool it is
   * a pending removal; excluded or cooling space under it is given to it. `Busy` on overlaps.
   */
  adopt(cidr: Cidr): void {
    const held = this.held;
    try {
      this.core.adopt(cidr);
      return;
    } catch (error) {
      if (held.empty || !(error instanceof IpamError) || error.code !== "Busy") throw error;
      // Held space in the way: hand it to the holder, unless another holder overlaps.
      const excluded = [...held.excluded.values()].filter((block) => block.overlaps(cidr));
      const cooling = held.cooling.overlapping(cidr);
      for (const block of excluded) held.unholdExcluded(block);
      for (const block of cooling) held.unholdCooling(block);
      try {
        this.core.adopt(cidr);
      } catch {
        for (const block of excluded) held.holdExcluded(block);
        for (const block of cooling) held.holdCooling(block.cidr, block.until);
        throw error;
      }
      for (const block of excluded) {
        for (const part of remainder(this.family, block, cidr)) held.holdExcluded(part);
      }
      for (const block of cooling) {
        for (const part of remainder(this.family, block.cidr, cidr)) held.holdCooling(part, block.until);
      }
    }
  }

  /**
   * Frees exactly what was allocated (else `NotAllocated`, nothing changes). Excluded space in it
   * stays excluded; with `coolUntil` the rest cools down until then instead of becoming free.
   */
  release(cidr: Cidr, options?: ReleaseOptions): void {
    const coolUntil = options?.coolUntil;
    if (this.exclusions.empty && this.held.empty && coolUntil === undefined) {
      this.core.release(cidr);
      return;
    }
    if (coolUntil !== undefined) checkTime(coolUntil, "cooldown end");
    if (cidr instanceof Cidr && cidr.family === this.family && this.held.isHeld(cidr)) {
      throw new IpamError("NotAllocated", `${cidr} is not allocated`);
    }
    this.core.release(cidr);
    const span = spanOf(cidr);
    if (coolUntil === undefined && !this.exclusions.overlaps(span)) return;
    // A pending removal gives back only its parts in the pool.
    const inPool = this.core.contains(cidr)
      ? [span]
      : intersect(span, mergeSpans(this.core.blocks().map(spanOf)));
    this.held.holdReleased(inPool, this.exclusions, coolUntil);
  }

  // ---------------------------------------------------------------- time

  /** Ends the cooldowns due at `now` (ms since the epoch); returns the blocks that became free. */
  expire(now: number): Cidr[] {
    checkTime(now, "time");
    const freed: Cidr[] = [];
    const cooling = this.held.cooling;
    for (let block = cooling.first(); block !== undefined && block.until <= now; block = cooling.first()) {
      this.held.unholdCooling(block);
      freed.push(block.cidr);
    }
    return freed;
  }

  /** The earliest end of a cooldown (wake `Busy` requests then), undefined when nothing cools. */
  nextCoolingEnd(): number | undefined {
    return this.held.cooling.first()?.until;
  }

  /** The cooling blocks with their end times, ascending by address. */
  coolingBlocks(): CoolingBlock[] {
    return this.held.cooling
      .byTime()
      .map((block) => ({ cidr: block.cidr, until: block.until }))
      .sort((a, b) => compareCidrs(a.cidr, b.cidr));
  }

  /** Cooling blocks in persistent form (`"<cidr>@<ISO time>"`); restore with `parseCooling`. */
  exportCooling(): string[] {
    return this.coolingBlocks().map(formatCooling);
  }

  // ---------------------------------------------------------------- queries

  isAllocated(cidr: Cidr): boolean {
    return this.core.isAllocated(cidr) && !this.held.isHeld(cidr);
  }

  /** Whether `cidr` lies inside the pool. */
  contains(cidr: Cidr): boolean {
    return this.core.contains(cidr);
  }

  /** Every allocation, including pending removals, ascending. */
  allocations(): Cidr[] {
    const all = this.core.allocations();
    if (this.held.empty) return all;
    return all.filter((cidr) => !this.held.isHeld(cidr));
  }

  /** Allocations (partly) outside the current pool, kept until released. */
  pendingRemovals(): Cidr[] {
    return this.core.pendingRemovals();
  }

  /** Allocations overlapping an exclusion (added after them), kept until released. */
  excludedAllocations(): Cidr[] {
    return this.held.allocationsOverlapping(this.exclusions);
  }

  /** The exclusions as given. */
  exclusionEntries(): Exclusion[] {
    return this.exclusions.entries.map((exclusion) => ({ ...exclusion }));
  }

  /** Excluded pool space not under an allocation, as blocks, ascending. */
  excludedBlocks(): Cidr[] {
    return [...this.held.excluded.values()].sort(compareCidrs);
  }

  /** The maximal free aligned blocks, ascending. */
  freeBlocks(): Cidr[] {
    return this.core.freeBlocks();
  }

  usage(options?: TimeOptions): Usage {
    if (options?.now !== undefined) this.expire(options.now);
    const core = this.core.usage();
    const excluded = this.held.excludedAddresses;
    const cooling = this.held.cooling.addresses;
    return {
      total: core.total,
      allocated: core.allocated - excluded - cooling,
      free: core.free,
      excluded,
      cooling,
      largestFree: core.largestFree,
      freeBlockCount: core.freeBlockCount,
    };
  }

  // ---------------------------------------------------------------- changes

  /**
   * Replaces the pool (§4 live range changes): new space is free at once (unless excluded);
   * allocations in removed space stay as pending removals; cooling space outside it is dropped.
   */
  setPool(blocks: readonly Cidr[]): void {
    if (this.exclusions.empty && this.held.empty) {
      this.core.setPool(blocks);
      return;
    }
    const cooling = this.held.releaseAll();
    try {
      this.core.setPool(blocks);
    } finally {
      this.largestUsablePrefix = this.held.holdAll(this.exclusions, cooling);
    }
  }

  /**
   * Replaces the exclusions (§7): like a shrink, allocations over new exclusions stay until released
   * (`excludedAllocations()`); space no longer excluded is free at once; cooling space excluded now
   * stops cooling.
   */
  setExclusions(exclusions: readonly Exclusion[]): void {
    const next = new ExclusionSet(this.family, exclusions);
    const cooling = this.held.releaseAll();
    this.exclusions = next;
    this.largestUsablePrefix = this.held.holdAll(next, cooling);
  }

  /** Round-robin cursors in `status.roundRobin` form, ascending by size. */
  exportCursors(): string[] {
    return this.core.exportCursors();
  }

  /** Replaces all cursors; junk is rejected with `InvalidCursor` and leaves the cursors unchanged. */
  setCursors(cursors: readonly string[]): void {
    this.core.setCursors(cursors);
  }

  /** Checks the internal invariants (for tests). */
  checkConsistency(): void {
    this.core.checkConsistency();
    this.held.checkConsistency(this.exclusions);
  }

  // ---------------------------------------------------------------- internals

  private checkExcluded(cidr: Cidr): void {
    if (this.exclusions.empty || !this.exclusions.overlaps(spanOf(cidr))) return;
    const exclusion = this.exclusions.firstOverlapping(spanOf(cidr)) as Exclusion;
    throw new IpamError("Excluded", `${cidr} overlaps excluded ${exclusion.entry}`);
  }

  /** The cooling blocks overlapping `cidr` when `error` is a `Busy` they may cause. */
  private coolingBehind(error: unknown, cidr: Cidr): CoolingBlock[] {
    if (!(error instanceof IpamError) || error.code !== "Busy" || this.held.cooling.size === 0) return [];
    return this.held.cooling.overlapping(cidr);
  }

  private coolingBusy(error: IpamError, until: number): IpamError {
    return new IpamError("Busy", `${error.message} (space is cooling down until ${isoTime(until)})`, until);
  }

  /**
   * Why automatic allocation found nothing: excluded space makes the size never fit, or only
   * cooling space would fit (then: from when on, if nothing else changes), or plain `Busy`.
   */
  private explainBusy(error: unknown, size: number): unknown {
    if (!(error instanceof IpamError) || error.code !== "Busy") return error;
    if (size < this.largestUsablePrefix) {
      if (this.largestUsablePrefix > this.width) {
        return new IpamError("NeverFits", `size ${size} never fits: the range is entirely excluded`);
      }
      return new IpamError(
        "NeverFits",
        `size ${size} never fits: the largest block of the range outside its exclusions is /${this.largestUsablePrefix}`,
      );
    }
    if (this.held.cooling.size === 0) return error;
    const until = this.held.coolingFitTime(() => this.core.fits(size));
    return until === undefined ? error : this.coolingBusy(error, until);
  }
}
