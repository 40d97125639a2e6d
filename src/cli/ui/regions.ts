// A pool as drawable regions: every address of the pool in exactly one region, each region an aligned
// block with one state. Built from the engine's own block lists (allocations, free, excluded and
// cooling blocks), so the cost follows the number of blocks, never the number of addresses.

import { type Allocator, Cidr } from "../../ipam/index.ts";

export type RegionKind = "allocated" | "pending" | "free" | "excluded" | "gateway" | "cooling";

export const REGION_KINDS: readonly RegionKind[] = [
  "allocated",
  "pending",
  "free",
  "excluded",
  "gateway",
  "cooling",
];

export interface Region {
  cidr: Cidr;
  kind: RegionKind;
  /** allocated, pending: the held block (larger than `cidr` when it reaches outside the pool). */
  block?: Cidr;
  /** cooling: when the cooldown ends (ms since the epoch). */
  until?: number;
}

/**
 * Ascending by start address, then larger block first. Compares the start keys, no BigInt: numbers
 * for IPv4, for IPv6 strings of eight 16-bit units, whose order is the addresses' order.
 */
export function compareCidrs(a: Cidr, b: Cidr): number {
  if (a.startKey !== b.startKey) return a.startKey < b.startKey ? -1 : 1;
  return a.prefix - b.prefix;
}

/** The parts of `block` left when the aligned `hole` inside it is taken out, as aligned blocks. */
export function blocksAround(block: Cidr, hole: Cidr): Cidr[] {
  const parts: Cidr[] = [];
  for (let prefix = block.prefix + 1; prefix <= hole.prefix; prefix++) {
    const half = Cidr.of(hole.family, hole.start, prefix);
    // The sibling of the half that holds the hole.
    const siblingStart = half.start ^ (1n << BigInt(hole.width - prefix));
    parts.push(Cidr.of(hole.family, siblingStart, prefix));
  }
  return parts.sort(compareCidrs);
}

/** The pool blocks inside `cidr` (an allocation reaching outside the pool holds only these of it). */
function poolPartsOf(pool: readonly Cidr[], cidr: Cidr): Cidr[] {
  return pool.filter((block) => cidr.contains(block));
}

/** The blocks held but pending removal (outside the pool now, or over an exclusion added later). */
function pendingBlocks(allocator: Allocator): Set<string> {
  return new Set([...allocator.pendingRemovals(), ...allocator.excludedAllocations()].map(String));
}

/** Pool addresses held by blocks pending removal (what poolRegions draws as `pending`), exact. */
export function pendingAddresses(allocator: Allocator): bigint {
  const pool = allocator.blocks();
  let total = 0n;
  for (const text of pendingBlocks(allocator)) {
    const block = Cidr.parse(text);
    if (allocator.contains(block)) total += block.size;
    else for (const part of poolPartsOf(pool, block)) total += part.size;
  }
  return total;
}

/**
 * The regions of the allocator's pool, ascending by address. Allocations that reach outside the pool
 * (shrunk ranges) or over an exclusion added after them are `pending` removal; `gateway` is the
 * gateway's address when it is excluded and not under an allocation.
 */
export function poolRegions(allocator: Allocator, gateway?: Cidr): Region[] {
  const pool = allocator.blocks();
  const pending = pendingBlocks(allocator);
  const regions: Region[] = [];
  for (const block of allocator.allocations()) {
    const kind = pending.has(block.toString()) ? "pending" : "allocated";
    if (allocator.contains(block)) regions.push({ cidr: block, kind, block });
    else for (const part of poolPartsOf(pool, block)) regions.push({ cidr: part, kind, block });
  }
  for (const cidr of allocator.freeBlocks()) regions.push({ cidr, kind: "free" });
  for (const cidr of allocator.excludedBlocks()) {
    if (gateway && cidr.contains(gateway)) {
      regions.push({ cidr: gateway, kind: "gateway" });
      for (const part of blocksAround(cidr, gateway)) regions.push({ cidr: part, kind: "excluded" });
    } else {
      regions.push({ cidr, kind: "excluded" });
    }
  }
  for (const { cidr, until } of allocator.coolingBlocks()) regions.push({ cidr, kind: "cooling", until });
  return regions.sort((a, b) => compareCidrs(a.cidr, b.cidr));
}

/** Addresses per region kind (exact). */
export type KindCounts = Record<RegionKind, bigint>;

export function emptyCounts(): KindCounts {
  return { allocated: 0n, pending: 0n, free: 0n, excluded: 0n, gateway: 0n, cooling: 0n };
}

export function countByKind(regions: readonly Region[]): KindCounts {
  const counts = emptyCounts();
  for (const region of regions) counts[region.kind] += region.cidr.size;
  return counts;
}
