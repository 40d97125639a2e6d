import { type Family, familyName, formatAddress, parseAddress, widthOf } from "./address.ts";
import type { BlockTable } from "./block-table.ts";
import { Cidr } from "./cidr.ts";
import { IpamError, type IpamErrorCode } from "./errors.ts";
import { type Key, type KeySpace, keySpaceOf } from "./keyspace.ts";
import { OrderedSet } from "./ordered-set.ts";
import { canonicalBlocks, type Mode } from "./pool.ts";

export interface AllocatorOptions {
  family: Family;
  /** Pool blocks; they are brought into canonical minimal form (§2). */
  blocks: readonly Cidr[];
  mode?: Mode | undefined;
  /** Round-robin cursors in `status.roundRobin` form (`"<ip>/<size>"`). */
  cursors?: readonly string[] | undefined;
}

export interface Usage {
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

export interface RebuildResult {
  allocator: Allocator;
  rejected: Rejection[];
}

const CURSOR_FORM = "use <ip>/<size>";
/** Leaf table values: allocated block of prefix p = p + 1; free block = FREE + p + 1; 0 = no leaf. */
const FREE = 256;
const PREFIX_DIGITS = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * Buddy allocator over a pool of aligned blocks (§4).
 *
 * Free space is the set of maximal free aligned blocks, kept per prefix length in ordered sets
 * (`free[p]`, B-trees), so FirstMatch is "longest non-empty level ≤ p, its minimum" and RoundRobin is
 * a `ceil` per level. The leaves of the buddy tree (free and allocated blocks, whose starts are
 * unique) are in one open-addressing hash table keyed by start, so buddy and containment checks are
 * O(1). Every operation costs O(W · log n), whatever the pool size or fill level.
 */
export class Allocator {
  readonly family: Family;
  readonly width: number;
  private readonly keys: KeySpace;
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
  private cursors: (Key | undefined)[] = [];
  /** Result of the last search: the free block to carve and the block to allocate from it. */
  private foundBlock: Key = 0;
  private foundBlockPrefix = 0;
  private foundTarget: Key = 0;

  constructor(options: AllocatorOptions) {
    if (options.family !== 4 && options.family !== 6) {
      throw new IpamError("InvalidRange", `invalid family ${String(options.family)}: use 4 or 6`);
    }
    this.family = options.family;
    this.width = widthOf(this.family);
    this.keys = keySpaceOf(this.family);
    this.leaves = this.keys.newTable();
    this.mode = options.mode ?? "FirstMatch";
    this.largestPoolPrefix = this.width + 1;
    if (options.cursors !== undefined) this.setCursors(options.cursors);
    this.installPool(canonicalBlocks(this.family, options.blocks));
    for (const block of this.pool) this.addFree(this.keys.fromAddress(block.startKey), block.prefix);
  }

  /** Rebuilds the state from stored allocations; entries that cannot be taken are listed, not thrown. */
  static rebuild(
    options: AllocatorOptions,
    allocations: readonly Cidr[],
    rebuildOptions: RebuildOptions = {},
  ): RebuildResult {
    const allocator = new Allocator(options);
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
    const keys = this.keys;
    let found = false;
    if (this.mode === "RoundRobin") {
      const cursor = this.cursors[size];
      if (cursor !== undefined) {
        found = this.findFrom(cursor, size);
        if (!found) this.cursors[size] = undefined;
      }
    }
    if (!found && !this.findBestFit(size)) {
      throw new IpamError("Busy", `allocation with size ${size} failed`);
    }
    const target = this.foundTarget;
    this.carve(this.foundBlock, this.foundBlockPrefix, target, size);
    this.leaves.set(target, size + 1);
    if (this.mode === "RoundRobin") this.cursors[size] = keys.next(target, size);
    return Cidr.fromKey(this.family, keys.toAddress(target), size);
  }

  /** Reserves the `index`-th block of prefix `size`, counted across the pool blocks in order (§3). */
  allocateIndexed(index: bigint, size: number): Cidr {
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
        const cidr = Cidr.of(this.family, block.start + (remaining << BigInt(this.width - size)), size);
        this.reserve(cidr);
        return cidr;
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
    const keys = this.keys;
    const target = keys.fromAddress(cidr.startKey);
    const size = cidr.prefix;
    if (!this.insidePool(target, size)) throw this.outside(cidr);
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
   * Records an existing allocation. Inside the pool it is reserved; (partly) outside it is kept as
   * a pending removal. Throws `Busy` if it overlaps anything allocated.
   */
  adopt(cidr: Cidr): void {
    this.checkFamily(cidr);
    const target = this.keys.fromAddress(cidr.startKey);
    if (this.insidePool(target, cidr.prefix)) {
      this.reserve(cidr);
      return;
    }
    for (const [key, prefix] of this.pending) {
      if (this.blocksOverlap(key, prefix, target, cidr.prefix))
        throw new IpamError("Busy", `${cidr} already busy`);
    }
    const covered = this.poolBlocksInside(target, cidr.prefix);
    for (const block of covered) {
      if (this.leaves.get(this.keys.fromAddress(block.startKey)) !== FREE + block.prefix + 1) {
        throw new IpamError("Busy", `${cidr} already busy`);
      }
    }
    for (const block of covered) this.removeFree(this.keys.fromAddress(block.startKey), block.prefix);
    this.pending.set(target, cidr.prefix);
  }

  /** Frees exactly what was allocated; anything else is `NotAllocated` and changes nothing. */
  release(cidr: Cidr): void {
    this.checkFamily(cidr);
    const keys = this.keys;
    const key = keys.fromAddress(cidr.startKey);
    const size = cidr.prefix;
    if (this.leaves.get(key) === size + 1) {
      this.freeAndMerge(key, size);
      return;
    }
    if (this.pending.get(key) === size) {
      this.pending.delete(key);
      // The parts of a pending block that are still in the pool are whole pool blocks.
      for (const block of this.poolBlocksInside(key, size)) {
        this.addFree(keys.fromAddress(block.startKey), block.prefix);
      }
      return;
    }
    throw new IpamError("NotAllocated", `${cidr} is not allocated`);
  }

  // ---------------------------------------------------------------- queries

  isAllocated(cidr: Cidr): boolean {
    if (cidr.family !== this.family) return false;
    const key = this.keys.fromAddress(cidr.startKey);
    return this.leaves.get(key) === cidr.prefix + 1 || this.pending.get(key) === cidr.prefix;
  }

  /** Whether `cidr` lies inside the pool. */
  contains(cidr: Cidr): boolean {
    return cidr.family === this.family && this.insidePool(this.keys.fromAddress(cidr.startKey), cidr.prefix);
  }

  /** Every allocation, including pending removals, ascending. */
  allocations(): Cidr[] {
    return this.sortedCidrs(this.allocatedEntries());
  }

  /** Allocations (partly) outside the current pool, kept until released. */
  pendingRemovals(): Cidr[] {
    return this.sortedCidrs([...this.pending]);
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

  usage(): Usage {
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
    const canonical = canonicalBlocks(this.family, blocks);
    const entries = this.allocatedEntries();
    this.installPool(canonical);
    const sorted = sortEntries(entries);
    this.sweep(sorted.keys, sorted.prefixes);
  }

  // ---------------------------------------------------------------- cursors

  /** Round-robin cursors in `status.roundRobin` form, ascending by size. */
  exportCursors(): string[] {
    const result: string[] = [];
    this.cursors.forEach((cursor, size) => {
      if (cursor !== undefined)
        result.push(`${formatAddress(this.family, this.keys.toAddress(cursor))}/${size}`);
    });
    return result;
  }

  /** Replaces all cursors; junk is rejected with `InvalidCursor` and leaves the cursors unchanged. */
  setCursors(cursors: readonly string[]): void {
    if (!Array.isArray(cursors))
      throw new IpamError("InvalidCursor", "invalid round robin cursors: not a list");
    const parsed: (Key | undefined)[] = [];
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
      parsed[size] = this.keys.fromAddress(address.key);
    }
    this.cursors = parsed;
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
        if (this.leaves.get(key) !== FREE + prefix + 1)
          throw new Error(`free block ${key}/${prefix} not in the leaf table`);
        if (prefix > 0 && this.leaves.get(this.keys.buddy(key, prefix)) === FREE + prefix + 1) {
          throw new Error(`free buddies ${key}/${prefix} not merged`);
        }
      });
    });
    if (freeBlocks !== freeLeaves) throw new Error(`${freeLeaves} free leaves but ${freeBlocks} free blocks`);
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
    this.poolKeys = blocks.map((block) => this.keys.fromAddress(block.startKey));
    this.largestPoolPrefix = this.width + 1;
    for (const block of blocks) {
      if (block.prefix < this.largestPoolPrefix) this.largestPoolPrefix = block.prefix;
    }
  }

  /** Index of the last pool block starting at or before `key`, or −1. */
  private poolIndexAtOrBefore(key: Key): number {
    const poolKeys = this.poolKeys;
    let low = 0;
    let high = poolKeys.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (key < (poolKeys[mid] as Key)) high = mid;
      else low = mid + 1;
    }
    return low - 1;
  }

  private insidePool(key: Key, prefix: number): boolean {
    const index = this.poolIndexAtOrBefore(key);
    if (index < 0) return false;
    const block = this.pool[index] as Cidr;
    return block.prefix <= prefix && this.keys.mask(key, block.prefix) === this.poolKeys[index];
  }

  /** Pool blocks that lie inside block (key, prefix). */
  private poolBlocksInside(key: Key, prefix: number): Cidr[] {
    const result: Cidr[] = [];
    const end = this.keys.next(key, prefix);
    let index = this.poolIndexAtOrBefore(key);
    if (index < 0 || (this.poolKeys[index] as Key) < key) index++;
    for (; index < this.pool.length; index++) {
      const poolKey = this.poolKeys[index] as Key;
      if (end !== undefined && poolKey >= end) break;
      const block = this.pool[index] as Cidr;
      if (block.prefix >= prefix) result.push(block);
    }
    return result;
  }

  private blocksOverlap(keyA: Key, prefixA: number, keyB: Key, prefixB: number): boolean {
    const shorter = Math.min(prefixA, prefixB);
    return this.keys.mask(keyA, shorter) === this.keys.mask(keyB, shorter);
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

  /** In-pool allocations (from the leaf table) and pending removals. */
  private allocatedEntries(): [Key, number][] {
    const entries: [Key, number][] = [];
    this.leaves.forEach((key, leaf) => {
      if (leaf < FREE) entries.push([key, leaf - 1]);
    });
    for (const entry of this.pending) entries.push(entry);
    return entries;
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
      for (let level = blockPrefix; level < targetPrefix; level++)
        this.addFree(keys.upperHalf(block, level), level + 1);
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
   * RoundRobin: best fit among free space at or after `cursor`. A free block that starts before the
   * cursor offers the largest aligned block at the first /size slot at or after the cursor.
   */
  private findFrom(cursor: Key, size: number): boolean {
    const keys = this.keys;
    let start: Key | undefined = keys.mask(cursor, size);
    if (start !== cursor) start = keys.next(start, size);
    if (start === undefined) return false;
    let bestKey: Key | undefined;
    let bestPrefix = -1;
    let containingFound = false;
    for (let level = size; level >= this.largestPoolPrefix; level--) {
      const set = this.free[level];
      if (set === undefined || set.size === 0) continue;
      if (bestKey === undefined) {
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

  private sortedCidrs(entries: [Key, number][]): Cidr[] {
    const result = entries.map(([key, prefix]) =>
      Cidr.fromKey(this.family, this.keys.toAddress(key), prefix),
    );
    return result.sort(compareCidrs);
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
    const leaves = keys.newTable();
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
  }

  /** Loads stored allocations into a fresh allocator (see `rebuild`). */
  private load(allocations: readonly Cidr[], keepOutside: boolean): Rejection[] {
    const keys = this.keys;
    const rejected: Rejection[] = [];
    const accepted: [Key, number][] = [];
    const candidates: Cidr[] = [];
    for (const cidr of allocations) {
      if (!(cidr instanceof Cidr) || cidr.family !== this.family) {
        rejected.push({
          cidr,
          code: "InvalidRequest",
          reason: `${String(cidr)} is ${cidr instanceof Cidr ? familyName(cidr.family) : "not a CIDR"} but the range is ${familyName(this.family)}`,
        });
        continue;
      }
      const key = keys.fromAddress(cidr.startKey);
      if (!keepOutside && !this.insidePool(key, cidr.prefix)) {
        rejected.push({ cidr, code: "Outside", reason: this.outside(cidr).message });
        continue;
      }
      candidates.push(cidr);
      accepted.push([key, cidr.prefix]);
    }
    const sorted = sortEntries(accepted);
    let disjoint = true;
    for (let i = 1; i < sorted.keys.length && disjoint; i++) {
      const previousEnd = keys.next(sorted.keys[i - 1] as Key, sorted.prefixes[i - 1] as number);
      disjoint = previousEnd !== undefined && previousEnd <= (sorted.keys[i] as Key);
    }
    if (disjoint) {
      this.sweep(sorted.keys, sorted.prefixes);
      return rejected;
    }
    // Overlaps (a corrupted store): first come, first served, in the given order.
    for (const cidr of candidates) {
      try {
        this.adopt(cidr);
      } catch (error) {
        if (!(error instanceof IpamError)) throw error;
        rejected.push({ cidr, code: "Busy", reason: `${cidr} overlaps an earlier allocation` });
      }
    }
    return rejected;
  }
}

function compareCidrs(a: Cidr, b: Cidr): number {
  const startA = a.startKey;
  const startB = b.startKey;
  if (startA !== startB) return startA < startB ? -1 : 1;
  return a.prefix - b.prefix;
}

/** Sorts (key, prefix) entries by key, then prefix; numbers through a typed array for speed. */
function sortEntries(entries: [Key, number][]): { keys: Key[]; prefixes: number[] } {
  const count = entries.length;
  const keys: Key[] = new Array<Key>(count);
  const prefixes: number[] = new Array<number>(count);
  if (count > 0 && typeof (entries[0] as [Key, number])[0] === "number") {
    // Signed 32-bit key and a prefix ≤ 32 packed into one exact double: key · 64 + prefix.
    const packed = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const entry = entries[i] as [Key, number];
      packed[i] = (entry[0] as number) * 64 + entry[1];
    }
    packed.sort();
    for (let i = 0; i < count; i++) {
      const value = packed[i] as number;
      const prefix = ((value % 64) + 64) % 64;
      keys[i] = (value - prefix) / 64;
      prefixes[i] = prefix;
    }
    return { keys, prefixes };
  }
  // IPv6: the key's code units followed by one code unit for the prefix sort as (key, prefix).
  const order = entries.map((entry) => (entry[0] as string) + String.fromCharCode(entry[1]));
  order.sort();
  for (let i = 0; i < count; i++) {
    const text = order[i] as string;
    keys[i] = text.slice(0, 8);
    prefixes[i] = text.charCodeAt(8);
  }
  return { keys, prefixes };
}
