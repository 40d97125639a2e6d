import { type AddressKey, type Family, familyName, formatAddress, parseAddress, widthOf } from "./address.ts";
import type { BlockTable } from "./block-table.ts";
import { Cidr } from "./cidr.ts";
import { IpamError, type IpamErrorCode } from "./errors.ts";
import { ipv4Keys, ipv6Keys, type Key, type KeySpace, RelativeIPv6Keys } from "./keyspace.ts";
import { OrderedSet } from "./ordered-set.ts";
import { canonicalBlocks, type Mode } from "./pool.ts";

export interface BuddyOptions {
  family: Family;
  /** Pool blocks; they are brought into canonical minimal form (§2). */
  blocks: readonly Cidr[];
  mode?: Mode | undefined;
  /** Round-robin cursors in `status.roundRobin` form (`"<ip>/<size>"`). */
  cursors?: readonly string[] | undefined;
}

export interface BuddyUsage {
  /** Addresses in the pool. */
  total: bigint;
  /** Addresses of the pool that are not free (allocations, and in-pool parts of pending removals). */
  allocated: bigint;
  /** total − allocated. */
  free: bigint;
  /** Prefix of the largest free block; undefined when nothing is free. */
  largestFree: number | undefined;
  freeBlockCount: number;
}

export interface Rejection {
  cidr: Cidr;
  code: IpamErrorCode;
  reason: string;
}

export interface RebuildOptions {
  /**
   * Keep allocations that lie (partly) outside the pool as pending removals instead of rejecting
   * them (the range shrank while the controller was down). Overlaps are always rejected.
   */
  keepOutside?: boolean;
}

export interface BuddyRebuildResult {
  allocator: BuddyAllocator;
  rejected: Rejection[];
}

const CURSOR_FORM = "use <ip>/<size>";
const PREFIX_DIGITS = /^(?:0|[1-9][0-9]{0,2})$/;
/** Leaf table values: allocated block of prefix p = p + 1; free block = FREE + p + 1; 0 = no leaf. */
const FREE = 256;

/** An address and prefix in the allocator-independent form of `Cidr.startKey`. */
type Placed = [AddressKey, number];

/**
 * Buddy allocator over a pool of aligned blocks (§4): the core of `Allocator`, which adds
 * exclusions and cooling blocks (§7) on top by holding them here like allocations.
 *
 * Free space is the set of maximal free aligned blocks, kept per prefix length in ordered sets
 * (`free[p]`, B-trees), so FirstMatch is "longest non-empty level ≤ p, its minimum" and RoundRobin is
 * a `ceil` per level. The leaves of the buddy tree (free and allocated blocks, whose starts are
 * unique) are in one open-addressing hash table keyed by start, so buddy and containment checks are
 * O(1). Every operation costs O(W · log n), whatever the pool size or fill level.
 */
export class BuddyAllocator {
  /** Testing only: always use the general IPv6 key form, so tests cover both forms. */
  static generalIPv6KeysForTests = false;
  readonly family: Family;
  readonly width: number;
  private keys: KeySpace;
  private mode: Mode;
  private pool: Cidr[] = [];
  private poolKeys: Key[] = [];
  /** Prefix of the largest pool block (W + 1 when the pool is empty). */
  private largestPoolPrefix: number;
  private free: (OrderedSet<Key> | undefined)[] = [];
  /** Leaves of the buddy tree inside the pool: start key → FREE? + prefix + 1. */
  private leaves: BlockTable<Key>;
  /** Allocations (partly) outside the current pool, kept until released. */
  private readonly pending = new Map<Key, number>();
  /** RoundRobin cursor per size, as an address (export form). */
  private cursorAddresses: (AddressKey | undefined)[] = [];
  /** Key of the first slot of that size at or after the cursor; undefined: none. */
  private cursorStarts: (Key | undefined)[] = [];
  /**
   * Whether a free block may start before the cursor's slot and hold it. False right after a
   * RoundRobin allocation (the space just before the cursor is allocated); only a release that
   * merges across the slot, a pool change or an import can make it true again.
   */
  private cursorCovered: boolean[] = [];
  /** Sizes that have a cursor. */
  private cursorSizes: number[] = [];
  /** Result of the last search: the free block to carve and the block to allocate from it. */
  private foundBlock: Key = 0;
  private foundBlockPrefix = 0;
  private foundTarget: Key = 0;

  constructor(options: BuddyOptions) {
    if (options.family !== 4 && options.family !== 6) {
      throw new IpamError("InvalidRange", `invalid family ${String(options.family)}: use 4 or 6`);
    }
    this.family = options.family;
    this.width = widthOf(this.family);
    this.mode = options.mode ?? "FirstMatch";
    if (this.mode !== "FirstMatch" && this.mode !== "RoundRobin") this.setMode(this.mode);
    this.largestPoolPrefix = this.width + 1;
    const pool = canonicalBlocks(this.family, options.blocks);
    this.keys = chooseKeySpace(this.family, pool, []);
    this.leaves = this.keys.newTable();
    this.installPool(pool);
    for (let i = 0; i < pool.length; i++) this.addFree(this.poolKeys[i] as Key, (pool[i] as Cidr).prefix);
    if (options.cursors !== undefined) this.setCursors(options.cursors);
  }

  /** Rebuilds the state from stored allocations; entries that cannot be taken are listed, not thrown. */
  static rebuild(
    options: BuddyOptions,
    allocations: readonly Cidr[],
    rebuildOptions: RebuildOptions = {},
  ): BuddyRebuildResult {
    const allocator = new BuddyAllocator(options);
    const rejected = allocator.load(allocations, rebuildOptions.keepOutside === true);
    return { allocator, rejected };
  }

  getMode(): Mode {
    return this.mode;
  }

  setMode(mode: Mode): void {
    if (mode !== "FirstMatch" && mode !== "RoundRobin") {
      throw new IpamError("InvalidMode", `invalid mode "${String(mode)}": use FirstMatch or RoundRobin`);
    }
    this.mode = mode;
  }

  /** The canonical pool blocks, ascending. */
  blocks(): Cidr[] {
    return [...this.pool];
  }

  // ---------------------------------------------------------------- allocation

  /** Allocates a block of prefix length `size` by the current mode (§4). */
  allocate(size: number): Cidr {
    this.checkSize(size);
    if (size < this.largestPoolPrefix) throw this.neverFits(size);
    if (size > this.keys.maxPrefix) this.rekey(ipv6Keys);
    let found = false;
    const roundRobin = this.mode === "RoundRobin";
    if (roundRobin && this.cursorAddresses[size] !== undefined) {
      const start = this.cursorStarts[size];
      found = start !== undefined && this.findFrom(start, size, this.cursorCovered[size] === true);
      if (!found) this.clearCursor(size);
    }
    if (!found && !this.findBestFit(size)) {
      throw new IpamError("Busy", `allocation with size ${size} failed`);
    }
    const keys = this.keys;
    const target = this.foundTarget;
    this.carve(this.foundBlock, this.foundBlockPrefix, target, size);
    this.leaves.set(target, size + 1);
    if (roundRobin) this.moveCursor(size, keys.next(target, size));
    return Cidr.fromKey(this.family, keys.toAddress(target), size);
  }

  /** Reserves the `index`-th block of prefix `size`, counted across the pool blocks in order (§3). */
  allocateIndexed(index: bigint, size: number): Cidr {
    const cidr = this.indexedBlock(index, size);
    this.reserve(cidr);
    return cidr;
  }

  /** Whether a block of prefix `size` is free now (so `allocate(size)` would succeed). */
  fits(size: number): boolean {
    return size >= this.largestPoolPrefix && this.findBestFit(size);
  }

  /** The `index`-th block of prefix `size`, counted across the pool blocks in order (§3). */
  indexedBlock(index: bigint, size: number): Cidr {
    this.checkSize(size);
    if (typeof index !== "bigint" || index < 0n) {
      throw new IpamError("InvalidRequest", `invalid block index ${String(index)}`);
    }
    let remaining = index;
    let available = 0n;
    for (const block of this.pool) {
      if (block.prefix > size) continue;
      const count = 1n << BigInt(size - block.prefix);
      if (remaining < count) {
        return Cidr.of(this.family, block.start + (remaining << BigInt(this.width - size)), size);
      }
      remaining -= count;
      available += count;
    }
    throw new IpamError(
      "InvalidRequest",
      `block ${index} of size ${size} is past the end: the range holds ${available} blocks of size ${size}`,
    );
  }

  /** Reserves exactly `cidr`: it must lie inside the pool and be entirely free. */
  reserve(cidr: Cidr): void {
    this.checkFamily(cidr);
    const size = cidr.prefix;
    if (!this.poolContains(cidr)) throw this.outside(cidr);
    if (size > this.keys.maxPrefix) this.rekey(ipv6Keys);
    const keys = this.keys;
    const target = keys.keyOf(cidr.startKey, size) as Key;
    for (let level = size; level >= this.largestPoolPrefix; level--) {
      const block = keys.mask(target, level);
      const leaf = this.leaves.get(block);
      if (leaf === FREE + level + 1) {
        this.carve(block, level, target, size);
        this.leaves.set(target, size + 1);
        return;
      }
      // An allocated leaf holds the target: no free block can.
      if (leaf !== 0 && leaf < FREE) break;
    }
    throw new IpamError("Busy", `${cidr} already busy`);
  }

  /**
   * Reserves the free parts of `cidr` (inside the pool) as the fewest blocks and returns them,
   * ascending. Costs O(W) per leaf of the buddy tree inside `cidr`, never per address.
   */
  reserveFree(cidr: Cidr): Cidr[] {
    this.checkFamily(cidr);
    if (!this.poolContains(cidr)) throw this.outside(cidr);
    if (cidr.prefix > this.keys.maxPrefix) this.rekey(ipv6Keys);
    const found: Cidr[] = [];
    this.reserveFreeIn(this.keys.keyOf(cidr.startKey, cidr.prefix) as Key, cidr.prefix, found);
    return found;
  }

  /**
   * Allocations overlapping `cidr` (inside one pool block), ascending, pending removals included.
   * Costs O(W) per leaf of the buddy tree inside `cidr`, plus O(pending removals).
   */
  allocationsOverlapping(cidr: Cidr): Cidr[] {
    this.checkFamily(cidr);
    if (!this.poolContains(cidr)) throw this.outside(cidr);
    const found: Cidr[] = [];
    for (const pending of this.pendingRemovals()) if (pending.overlaps(cidr)) found.push(pending);
    // No leaf is smaller than the key form allows: look at the aligned block of that size.
    const prefix = Math.min(cidr.prefix, this.keys.maxPrefix);
    const start = prefix === cidr.prefix ? cidr.startKey : Cidr.of(this.family, cidr.start, prefix).startKey;
    this.collectAllocations(this.keys.keyOf(start, prefix) as Key, prefix, found);
    return found.sort(compareCidrs);
  }

  /**
   * Records an existing allocation. Inside the pool it is reserved; (partly) outside it is kept as
   * a pending removal. Throws `Busy` if it overlaps anything allocated.
   */
  adopt(cidr: Cidr): void {
    this.checkFamily(cidr);
    if (this.poolContains(cidr)) {
      this.reserve(cidr);
      return;
    }
    if (this.keys.keyOf(cidr.startKey, cidr.prefix) === undefined) {
      this.rekey(
        chooseKeySpace(this.family, this.pool, [...this.placedAllocations(), [cidr.startKey, cidr.prefix]]),
      );
    }
    const keys = this.keys;
    const target = keys.keyOf(cidr.startKey, cidr.prefix) as Key;
    for (const [key, prefix] of this.pending) {
      const shorter = Math.min(prefix, cidr.prefix);
      if (keys.mask(key, shorter) === keys.mask(target, shorter)) {
        throw new IpamError("Busy", `${cidr} already busy`);
      }
    }
    const covered = this.poolIndexesInside(target, cidr.prefix);
    for (const index of covered) {
      if (this.leaves.get(this.poolKeys[index] as Key) !== FREE + (this.pool[index] as Cidr).prefix + 1) {
        throw new IpamError("Busy", `${cidr} already busy`);
      }
    }
    for (const index of covered)
      this.removeFree(this.poolKeys[index] as Key, (this.pool[index] as Cidr).prefix);
    this.pending.set(target, cidr.prefix);
  }

  /** Frees exactly what was allocated; anything else is `NotAllocated` and changes nothing. */
  release(cidr: Cidr): void {
    this.checkFamily(cidr);
    const size = cidr.prefix;
    const key = this.keys.keyOf(cidr.startKey, size);
    if (key !== undefined) {
      if (this.leaves.get(key) === size + 1) {
        this.freeAndMerge(key, size);
        return;
      }
      if (this.pending.get(key) === size) {
        this.pending.delete(key);
        // The parts of a pending block that are still in the pool are whole pool blocks.
        for (const index of this.poolIndexesInside(key, size)) {
          const poolKey = this.poolKeys[index] as Key;
          const poolPrefix = (this.pool[index] as Cidr).prefix;
          this.addFree(poolKey, poolPrefix);
          this.noteFreed(poolKey, poolPrefix);
        }
        return;
      }
    }
    throw new IpamError("NotAllocated", `${cidr} is not allocated`);
  }

  // ---------------------------------------------------------------- queries

  isAllocated(cidr: Cidr): boolean {
    if (!(cidr instanceof Cidr) || cidr.family !== this.family) return false;
    const key = this.keys.keyOf(cidr.startKey, cidr.prefix);
    if (key === undefined) return false;
    return this.leaves.get(key) === cidr.prefix + 1 || this.pending.get(key) === cidr.prefix;
  }

  /** Whether `cidr` lies inside the pool. */
  contains(cidr: Cidr): boolean {
    return cidr instanceof Cidr && cidr.family === this.family && this.poolContains(cidr);
  }

  /** Every allocation, including pending removals, ascending. */
  allocations(): Cidr[] {
    return this.sortedCidrs(this.placedAllocations());
  }

  /** Allocations (partly) outside the current pool, kept until released. */
  pendingRemovals(): Cidr[] {
    return this.sortedCidrs(
      [...this.pending].map(([key, prefix]): Placed => [this.keys.toAddress(key), prefix]),
    );
  }

  /** The maximal free aligned blocks, ascending. */
  freeBlocks(): Cidr[] {
    const blocks: Cidr[] = [];
    this.free.forEach((set, prefix) => {
      set?.forEach((key) => {
        blocks.push(Cidr.fromKey(this.family, this.keys.toAddress(key), prefix));
      });
    });
    return blocks.sort(compareCidrs);
  }

  usage(): BuddyUsage {
    let total = 0n;
    for (const block of this.pool) total += block.size;
    let free = 0n;
    let largestFree: number | undefined;
    let freeBlockCount = 0;
    this.free.forEach((set, prefix) => {
      if (set === undefined || set.size === 0) return;
      largestFree ??= prefix;
      freeBlockCount += set.size;
      free += BigInt(set.size) << BigInt(this.width - prefix);
    });
    return { total, allocated: total - free, free, largestFree, freeBlockCount };
  }

  // ---------------------------------------------------------------- pool changes

  /**
   * Replaces the pool (§4 live range changes): new space is free at once; removed space stops being
   * allocatable; allocations in removed space stay as pending removals until released.
   */
  setPool(blocks: readonly Cidr[]): void {
    const pool = canonicalBlocks(this.family, blocks);
    const placed = this.placedAllocations();
    this.keys = chooseKeySpace(this.family, pool, placed);
    this.installPool(pool);
    this.load(placed, true);
  }

  // ---------------------------------------------------------------- cursors

  /** Round-robin cursors in `status.roundRobin` form, ascending by size. */
  exportCursors(): string[] {
    const result: string[] = [];
    this.cursorAddresses.forEach((address, size) => {
      if (address !== undefined) result.push(`${formatAddress(this.family, address)}/${size}`);
    });
    return result;
  }

  /** Replaces all cursors; junk is rejected with `InvalidCursor` and leaves the cursors unchanged. */
  setCursors(cursors: readonly string[]): void {
    if (!Array.isArray(cursors)) {
      throw new IpamError("InvalidCursor", "invalid round robin cursors: not a list");
    }
    const parsed: (AddressKey | undefined)[] = [];
    for (const entry of cursors) {
      const invalid = (why: string): IpamError =>
        new IpamError("InvalidCursor", `invalid round robin cursor "${String(entry)}": ${why}`);
      if (typeof entry !== "string") throw invalid(CURSOR_FORM);
      const slash = entry.lastIndexOf("/");
      const address = parseAddress(entry.slice(0, Math.max(slash, 0)));
      const sizeText = entry.slice(slash + 1);
      if (slash < 0 || address === undefined || !PREFIX_DIGITS.test(sizeText)) throw invalid(CURSOR_FORM);
      if (address.family !== this.family) {
        throw invalid(`${familyName(address.family)} but the range is ${familyName(this.family)}`);
      }
      const size = Number(sizeText);
      if (size > this.width) throw invalid(`size ${size} too large: network ${this.width}`);
      if (parsed[size] !== undefined) throw invalid(`a second cursor for size ${size}`);
      parsed[size] = address.key;
    }
    this.cursorAddresses = parsed;
    this.recomputeCursorStarts();
  }

  /**
   * Checks the internal invariants (for tests): every free block is in the leaf table, no two free
   * buddies coexist, and the table holds nothing else but allocations.
   */
  checkConsistency(): void {
    let freeLeaves = 0;
    this.leaves.forEach((_key, leaf) => {
      if (leaf > FREE) freeLeaves++;
    });
    let freeBlocks = 0;
    this.free.forEach((set, prefix) => {
      set?.forEach((key) => {
        freeBlocks++;
        if (this.leaves.get(key) !== FREE + prefix + 1) {
          throw new Error(`free block ${String(key)}/${prefix} not in the leaf table`);
        }
        if (prefix > 0 && this.leaves.get(this.keys.buddy(key, prefix)) === FREE + prefix + 1) {
          throw new Error(`free buddies ${String(key)}/${prefix} not merged`);
        }
      });
    });
    if (freeBlocks !== freeLeaves) throw new Error(`${freeLeaves} free leaves but ${freeBlocks} free blocks`);
    for (const size of this.cursorSizes) {
      if (this.cursorAddresses[size] === undefined) throw new Error(`cursor size ${size} listed but unset`);
    }
  }

  // ---------------------------------------------------------------- internals

  private checkSize(size: number): void {
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
      throw new IpamError("InvalidSize", `invalid size ${String(size)}`);
    }
    if (size > this.width)
      throw new IpamError("InvalidSize", `size ${size} too large: network ${this.width}`);
  }

  private checkFamily(cidr: Cidr): void {
    if (!(cidr instanceof Cidr)) throw new IpamError("InvalidRequest", `invalid CIDR ${String(cidr)}`);
    if (cidr.family !== this.family) {
      throw new IpamError(
        "InvalidRequest",
        `${cidr} is ${familyName(cidr.family)} but the range is ${familyName(this.family)}`,
      );
    }
  }

  private neverFits(size: number): IpamError {
    if (this.pool.length === 0)
      return new IpamError("NeverFits", `size ${size} never fits: the range is empty`);
    return new IpamError(
      "NeverFits",
      `size ${size} never fits: the largest block of the range is /${this.largestPoolPrefix}`,
    );
  }

  private outside(cidr: Cidr): IpamError {
    const shown = this.pool.slice(0, 4).map(String);
    if (this.pool.length > 4) shown.push(`and ${this.pool.length - 4} more blocks`);
    const where = this.pool.length === 0 ? "the range is empty" : shown.join(", ");
    return new IpamError("Outside", `${cidr} is outside the range (${where})`);
  }

  private installPool(blocks: Cidr[]): void {
    this.pool = blocks;
    this.poolKeys = blocks.map((block) => this.keys.keyOf(block.startKey, block.prefix) as Key);
    this.largestPoolPrefix = this.width + 1;
    for (const block of blocks) {
      if (block.prefix < this.largestPoolPrefix) this.largestPoolPrefix = block.prefix;
    }
  }

  /** Index of the last pool block starting at or before address `start`, or −1. */
  private poolIndexAtOrBefore(start: AddressKey): number {
    const pool = this.pool;
    let low = 0;
    let high = pool.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (start < (pool[mid] as Cidr).startKey) high = mid;
      else low = mid + 1;
    }
    return low - 1;
  }

  /** Whether `cidr` lies inside one pool block (so inside the pool: the cover is canonical). */
  private poolContains(cidr: Cidr): boolean {
    const index = this.poolIndexAtOrBefore(cidr.startKey);
    if (index < 0) return false;
    const block = this.pool[index] as Cidr;
    if (block.prefix > cidr.prefix) return false;
    const key = this.keys.keyOf(cidr.startKey, cidr.prefix);
    // Key arithmetic when the key form holds the block; exact BigInt arithmetic otherwise.
    if (key !== undefined) return this.keys.mask(key, block.prefix) === this.poolKeys[index];
    return block.contains(cidr);
  }

  /** Indexes of the pool blocks that lie inside block (key, prefix). */
  private poolIndexesInside(key: Key, prefix: number): number[] {
    const result: number[] = [];
    const keys = this.keys;
    for (let index = 0; index < this.pool.length; index++) {
      const poolPrefix = (this.pool[index] as Cidr).prefix;
      if (poolPrefix >= prefix && keys.mask(this.poolKeys[index] as Key, prefix) === key) result.push(index);
    }
    return result;
  }

  private addFree(key: Key, prefix: number): void {
    let set = this.free[prefix];
    if (set === undefined) {
      set = new OrderedSet<Key>();
      this.free[prefix] = set;
    }
    set.add(key);
    this.leaves.set(key, FREE + prefix + 1);
  }

  private removeFree(key: Key, prefix: number): void {
    this.free[prefix]?.delete(key);
    this.leaves.delete(key);
  }

  /** In-pool allocations (from the leaf table) and pending removals, as addresses. */
  private placedAllocations(): Placed[] {
    const keys = this.keys;
    const placed: Placed[] = [];
    this.leaves.forEach((key, leaf) => {
      if (leaf < FREE) placed.push([keys.toAddress(key), leaf - 1]);
    });
    for (const [key, prefix] of this.pending) placed.push([keys.toAddress(key), prefix]);
    return placed;
  }

  /** Keys of the blocks' starts, or undefined if the key form cannot hold them all. */
  private keysOf(blocks: readonly Cidr[]): Key[] | undefined {
    const keys = this.keys;
    const result: Key[] = new Array<Key>(blocks.length);
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i] as Cidr;
      const key = keys.keyOf(block.startKey, block.prefix);
      if (key === undefined) return undefined;
      result[i] = key;
    }
    return result;
  }

  /** Switches the key form (all state is rebuilt from the allocations). */
  private rekey(keys: KeySpace): void {
    const placed = this.placedAllocations();
    this.keys = keys;
    this.installPool(this.pool);
    this.load(placed, true);
  }

  /**
   * Takes free block (block, blockPrefix) and splits it toward `target` down to `targetPrefix`,
   * leaving the halves that do not hold the target free.
   */
  private carve(block: Key, blockPrefix: number, target: Key, targetPrefix: number): void {
    const keys = this.keys;
    // The leaf entry of `block` is overwritten below: by the target, or by the lower half that
    // does not hold the target.
    (this.free[blockPrefix] as OrderedSet<Key>).delete(block);
    if (block === target) {
      for (let level = blockPrefix; level < targetPrefix; level++) {
        this.addFree(keys.upperHalf(block, level), level + 1);
      }
      return;
    }
    for (let level = blockPrefix + 1; level <= targetPrefix; level++) {
      this.addFree(keys.buddy(keys.mask(target, level), level), level);
    }
  }

  /** Frees a block and merges it with free buddies, cascading (§4). */
  private freeAndMerge(key: Key, prefix: number): void {
    const keys = this.keys;
    const leaves = this.leaves;
    let level = prefix;
    let current = key;
    // A free buddy lies in the pool, so the merged parent does too: the canonical pool keeps
    // every aligned block of the union inside one pool block.
    while (level > 0) {
      const buddy = keys.buddy(current, level);
      if (leaves.get(buddy) !== FREE + level + 1) break;
      (this.free[level] as OrderedSet<Key>).delete(buddy);
      // The merged block starts at the lower of the two; the other's leaf entry goes.
      if (buddy < current) {
        leaves.delete(current);
        current = buddy;
      } else {
        leaves.delete(buddy);
      }
      level--;
    }
    this.addFree(current, level);
    this.noteFreed(current, level);
  }

  /** `reserveFree` below the pool level: the leaf holding the target, else both halves. */
  private reserveFreeIn(target: Key, prefix: number, found: Cidr[]): void {
    const keys = this.keys;
    for (let level = prefix; level >= this.largestPoolPrefix; level--) {
      const block = keys.mask(target, level);
      const leaf = this.leaves.get(block);
      if (leaf === FREE + level + 1) {
        this.carve(block, level, target, prefix);
        this.leaves.set(target, prefix + 1);
        found.push(Cidr.fromKey(this.family, keys.toAddress(target), prefix));
        return;
      }
      if (leaf === level + 1) return;
      // A smaller leaf starts here: no leaf holds the target, it is split.
      if (leaf !== 0 && (leaf < FREE ? leaf - 1 : leaf - FREE - 1) > level) break;
    }
    // The leftmost leaf of a split block starts where it does; no leaf there: a pending removal
    // covers the block (its pool blocks leave the tree).
    if (this.leaves.get(target) === 0) return;
    // Leaves lie deeper, so the halves are within the key form.
    if (prefix >= keys.maxPrefix) throw new Error(`no leaf holds ${String(target)}/${prefix}`);
    this.reserveFreeIn(target, prefix + 1, found);
    this.reserveFreeIn(keys.upperHalf(target, prefix), prefix + 1, found);
  }

  /** `allocationsOverlapping` below the pool level: the leaf holding the target, else both halves. */
  private collectAllocations(target: Key, prefix: number, found: Cidr[]): void {
    const keys = this.keys;
    for (let level = prefix; level >= this.largestPoolPrefix; level--) {
      const block = keys.mask(target, level);
      const leaf = this.leaves.get(block);
      if (leaf === FREE + level + 1) return;
      if (leaf === level + 1) {
        found.push(Cidr.fromKey(this.family, keys.toAddress(block), level));
        return;
      }
      if (leaf !== 0 && (leaf < FREE ? leaf - 1 : leaf - FREE - 1) > level) break;
    }
    if (this.leaves.get(target) === 0 || prefix >= keys.maxPrefix) return;
    this.collectAllocations(target, prefix + 1, found);
    this.collectAllocations(keys.upperHalf(target, prefix), prefix + 1, found);
  }

  /** A new free block may start before a cursor's slot and hold it (see `cursorCovered`). */
  private noteFreed(key: Key, prefix: number): void {
    const keys = this.keys;
    for (const size of this.cursorSizes) {
      const start = this.cursorStarts[size];
      if (start !== undefined && prefix < size && start !== key && keys.mask(start, prefix) === key) {
        this.cursorCovered[size] = true;
      }
    }
  }

  private moveCursor(size: number, next: Key | undefined): void {
    if (next === undefined) {
      this.clearCursor(size);
      return;
    }
    if (this.cursorAddresses[size] === undefined) this.cursorSizes.push(size);
    this.cursorAddresses[size] = this.keys.toAddress(next);
    this.cursorStarts[size] = next;
    this.cursorCovered[size] = false;
  }

  private clearCursor(size: number): void {
    if (this.cursorAddresses[size] === undefined) return;
    this.cursorAddresses[size] = undefined;
    this.cursorStarts[size] = undefined;
    this.cursorSizes.splice(this.cursorSizes.indexOf(size), 1);
  }

  private recomputeCursorStarts(): void {
    this.cursorStarts = [];
    this.cursorCovered = [];
    this.cursorSizes = [];
    this.cursorAddresses.forEach((address, size) => {
      if (address === undefined) return;
      this.cursorSizes.push(size);
      this.cursorStarts[size] = size > this.keys.maxPrefix ? undefined : this.keys.ceilAligned(address, size);
      this.cursorCovered[size] = true;
    });
  }

  /** FirstMatch: the smallest free block that holds `size`, lowest address. */
  private findBestFit(size: number): boolean {
    const free = this.free;
    for (let level = size; level >= this.largestPoolPrefix; level--) {
      const set = free[level];
      if (set === undefined || set.size === 0) continue;
      const block = set.min() as Key;
      this.foundBlock = block;
      this.foundBlockPrefix = level;
      this.foundTarget = block;
      return true;
    }
    return false;
  }

  /**
   * RoundRobin: best fit among free space at or after `start` (the cursor's slot). A free block that
   * starts before the slot and holds it offers the largest aligned block at the slot; only looked
   * for when `covered` says such a block may exist.
   */
  private findFrom(start: Key, size: number, covered: boolean): boolean {
    const keys = this.keys;
    let bestKey: Key | undefined;
    let bestPrefix = -1;
    let containingFound = !covered;
    for (let level = size; level >= this.largestPoolPrefix; level--) {
      const set = this.free[level];
      if (set === undefined || set.size === 0) continue;
      if (bestKey === undefined && (set.max() as Key) >= start) {
        const after = set.ceil(start);
        if (after !== undefined) {
          bestKey = after;
          bestPrefix = level;
          this.foundBlock = after;
          this.foundBlockPrefix = level;
          this.foundTarget = after;
        }
      }
      if (!containingFound && level < size) {
        const block = keys.mask(start, level);
        if (block !== start && this.leaves.get(block) === FREE + level + 1) {
          containingFound = true;
          // The largest aligned block at `start` inside the free block.
          let offered = level + 1;
          while (keys.mask(start, offered) !== start) offered++;
          if (offered > bestPrefix || (offered === bestPrefix && bestKey !== undefined && start < bestKey)) {
            bestKey = start;
            bestPrefix = offered;
            this.foundBlock = block;
            this.foundBlockPrefix = level;
            this.foundTarget = start;
          }
        }
      }
      if (bestKey !== undefined && containingFound) break;
    }
    return bestKey !== undefined;
  }

  private sortedCidrs(placed: Placed[]): Cidr[] {
    return placed.map(([address, prefix]) => Cidr.fromKey(this.family, address, prefix)).sort(compareCidrs);
  }

  /**
   * Recomputes the free space from the pool and the allocations given ascending and disjoint:
   * the free blocks are the maximal aligned blocks of each pool block not covered by an allocation.
   * Allocations inside the pool become leaves; the others pending removals.
   */
  private sweep(allocationKeys: readonly Key[], allocationPrefixes: readonly number[]): void {
    const keys = this.keys;
    const count = allocationKeys.length;
    const freeLists: Key[][] = [];
    const visitFree = (key: Key, prefix: number): void => {
      let list = freeLists[prefix];
      if (list === undefined) {
        list = [];
        freeLists[prefix] = list;
      }
      list.push(key);
    };
    const before = (a: Key | undefined, b: Key | undefined): boolean =>
      a !== undefined && (b === undefined || a < b);
    const inside = new Uint8Array(count);
    let index = 0;
    for (let p = 0; p < this.pool.length; p++) {
      const poolKey = this.poolKeys[p] as Key;
      const poolPrefix = (this.pool[p] as Cidr).prefix;
      const poolEnd = keys.next(poolKey, poolPrefix);
      // Allocations that end at or before this pool block do not touch it.
      while (
        index < count &&
        !before(poolKey, keys.next(allocationKeys[index] as Key, allocationPrefixes[index] as number))
      ) {
        index++;
      }
      // An allocation that starts before the pool block and overlaps it covers all of it.
      if (index < count && (allocationKeys[index] as Key) < poolKey) continue;
      if (
        index < count &&
        allocationKeys[index] === poolKey &&
        (allocationPrefixes[index] as number) < poolPrefix
      ) {
        continue;
      }
      let gapStart: Key | undefined = poolKey;
      while (index < count && before(allocationKeys[index] as Key, poolEnd)) {
        const key = allocationKeys[index] as Key;
        const prefix = allocationPrefixes[index] as number;
        inside[index] = 1;
        if (gapStart !== undefined && gapStart < key) keys.coverGap(gapStart, key, visitFree);
        gapStart = keys.next(key, prefix);
        index++;
      }
      if (before(gapStart, poolEnd)) keys.coverGap(gapStart as Key, poolEnd, visitFree);
    }
    let freeCount = 0;
    for (const list of freeLists) freeCount += list === undefined ? 0 : list.length;
    const leaves = keys.newTable(freeCount + count);
    this.free = [];
    freeLists.forEach((list, prefix) => {
      this.free[prefix] = OrderedSet.fromSorted(list);
      for (const key of list) leaves.set(key, FREE + prefix + 1);
    });
    this.leaves = leaves;
    this.pending.clear();
    for (let i = 0; i < count; i++) {
      const key = allocationKeys[i] as Key;
      const prefix = allocationPrefixes[i] as number;
      if (inside[i] === 1) leaves.set(key, prefix + 1);
      else this.pending.set(key, prefix);
    }
    this.recomputeCursorStarts();
  }

  /**
   * Replaces all allocations (the pool and key form are set): in the given order, entries that
   * overlap an earlier one are rejected, and so are entries outside the pool unless `keepOutside`.
   */
  private load(allocations: readonly (Cidr | Placed)[], keepOutside: boolean): Rejection[] {
    // Rejections are reported in the given order: [input index, rejection].
    const rejected: [number, Rejection][] = [];
    const ordered = (): Rejection[] => rejected.sort((a, b) => a[0] - b[0]).map((entry) => entry[1]);
    const candidates: Cidr[] = [];
    const candidateIndexes: number[] = [];
    for (let index = 0; index < allocations.length; index++) {
      const entry = allocations[index] as Cidr | Placed;
      const cidr = Array.isArray(entry) ? Cidr.fromKey(this.family, entry[0], entry[1]) : entry;
      if (!(cidr instanceof Cidr) || cidr.family !== this.family) {
        const what = cidr instanceof Cidr ? familyName(cidr.family) : "not a CIDR";
        const reason = `${String(cidr)} is ${what} but the range is ${familyName(this.family)}`;
        rejected.push([index, { cidr, code: "InvalidRequest", reason }]);
        continue;
      }
      if (!keepOutside && !this.poolContains(cidr)) {
        rejected.push([index, { cidr, code: "Outside", reason: this.outside(cidr).message }]);
        continue;
      }
      candidates.push(cidr);
      candidateIndexes.push(index);
    }
    let starts = this.keysOf(candidates);
    if (starts === undefined) {
      this.keys = chooseKeySpace(
        this.family,
        this.pool,
        candidates.map((cidr): Placed => [cidr.startKey, cidr.prefix]),
      );
      this.installPool(this.pool);
      starts = this.keysOf(candidates) as Key[];
    }
    const keys = this.keys;
    // Sort by start, then prefix; equal starts mean overlapping entries (the check below sees them).
    const { sorted, prefixes } = sortBlocks(
      starts,
      candidates.map((cidr) => cidr.prefix),
      keys === ipv4Keys,
    );
    let disjoint = true;
    for (let i = 1; i < sorted.length && disjoint; i++) {
      const previousEnd = keys.next(sorted[i - 1] as Key, prefixes[i - 1] as number);
      disjoint = previousEnd !== undefined && previousEnd <= (sorted[i] as Key);
    }
    if (disjoint) {
      this.sweep(sorted, prefixes);
      return ordered();
    }
    // Overlaps (a corrupted store): first come, first served, in the given order.
    this.sweep([], []);
    candidates.forEach((cidr, i) => {
      try {
        this.adopt(cidr);
      } catch (error) {
        if (!(error instanceof IpamError)) throw error;
        const reason = `${cidr} overlaps an earlier allocation`;
        rejected.push([candidateIndexes[i] as number, { cidr, code: "Busy", reason }]);
      }
    });
    return ordered();
  }
}

function compareCidrs(a: Cidr, b: Cidr): number {
  const startA = a.startKey;
  const startB = b.startKey;
  if (startA !== startB) return startA < startB ? -1 : 1;
  return a.prefix - b.prefix;
}

/** Sorts blocks by start, then prefix. IPv4 packs both into one exact double (key · 64 + prefix). */
function sortBlocks(
  starts: Key[],
  prefixes: number[],
  packed: boolean,
): { sorted: Key[]; prefixes: number[] } {
  const count = starts.length;
  if (packed) {
    const values = new Float64Array(count);
    for (let i = 0; i < count; i++) values[i] = (starts[i] as number) * 64 + (prefixes[i] as number);
    values.sort();
    const sorted: Key[] = new Array<Key>(count);
    const sortedPrefixes: number[] = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const value = values[i] as number;
      const prefix = ((value % 64) + 64) % 64;
      sorted[i] = (value - prefix) / 64;
      sortedPrefixes[i] = prefix;
    }
    return { sorted, prefixes: sortedPrefixes };
  }
  const order = Array.from({ length: count }, (_, i) => i);
  order.sort((a, b) => {
    const startA = starts[a] as Key;
    const startB = starts[b] as Key;
    if (startA !== startB) return startA < startB ? -1 : 1;
    return (prefixes[a] as number) - (prefixes[b] as number);
  });
  return { sorted: order.map((i) => starts[i] as Key), prefixes: order.map((i) => prefixes[i] as number) };
}

function commonPrefixLength(a: string, b: string): number {
  for (let unit = 0; unit < 8; unit++) {
    const difference = a.charCodeAt(unit) ^ b.charCodeAt(unit);
    if (difference !== 0) return unit * 16 + Math.clz32(difference) - 16;
  }
  return 128;
}

/**
 * The key form for a pool and its allocations: IPv4 keys; for IPv6, exact doubles relative to the
 * hull when every prefix in use is within 53 bits of the hull's prefix, else code-unit strings.
 */
function chooseKeySpace(family: Family, pool: readonly Cidr[], placed: readonly Placed[]): KeySpace {
  if (family === 4) return ipv4Keys;
  if (BuddyAllocator.generalIPv6KeysForTests) return ipv6Keys;
  let lowest: string | undefined;
  let highest: string | undefined;
  let shortest = 128;
  let longest = 0;
  const visit = (start: string, prefix: number): void => {
    if (lowest === undefined || start < lowest) lowest = start;
    if (highest === undefined || start > highest) highest = start;
    if (prefix < shortest) shortest = prefix;
    if (prefix > longest) longest = prefix;
  };
  for (const block of pool) visit(block.startKey as string, block.prefix);
  for (const [start, prefix] of placed) visit(start as string, prefix);
  if (lowest === undefined || highest === undefined) return ipv6Keys;
  const hullPrefix = Math.min(shortest, commonPrefixLength(lowest, highest));
  if (longest > hullPrefix + 53) return ipv6Keys;
  return new RelativeIPv6Keys(lowest, hullPrefix);
}
