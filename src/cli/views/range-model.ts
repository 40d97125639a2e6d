// A range as the engine sees it: its spec parsed into pool blocks and its IPAMAllocation objects loaded
// into an Allocator (allocations outside the pool kept as pending removals), so that the views show
// the true state even when the range's status lags behind.

import type { IPAMAllocation, IPAMRange } from "../../api/types.ts";
import { validateRangeSpec } from "../../api/validation.ts";
import { Allocator, Cidr, type CoolingBlock, type Family, parseCooling } from "../../ipam/index.ts";

export interface HeldAllocation {
  cidr: Cidr;
  object: IPAMAllocation;
}

export interface RejectedAllocation {
  /** The allocation object's name. */
  name: string;
  cidr: string;
  reason: string;
}

export interface RangeModel {
  namespace: string;
  name: string;
  /** `Invalid` when the spec does not parse, whatever the status says. */
  state: string;
  /** Why the spec is invalid; undefined when valid. */
  invalid: string | undefined;
  family: Family | undefined;
  mode: string;
  ranges: string[];
  pool: Cidr[];
  /** Undefined when the spec is invalid or the pool is empty. */
  allocator: Allocator | undefined;
  /** Allocation objects the allocator took, ascending by block. */
  held: HeldAllocation[];
  /** Allocation objects it could not take (unparsable CIDR, other family, overlap). */
  rejected: RejectedAllocation[];
  size: bigint;
  allocated: bigint;
  free: bigint;
  largestFree: number | undefined;
  /** Outside the pool, or over an exclusion added after them: kept until released. */
  pendingRemovals: Cidr[];
  /** spec.exclude as written (§7). */
  exclude: string[];
  /** spec.gateway as written. */
  gateway: string | undefined;
  cooldownSeconds: number;
  /** Excluded pool addresses not under an allocation. */
  excluded: bigint;
  /** Released blocks cooling down, as the range's status.cooling says. */
  cooling: CoolingBlock[];
  coolingAddresses: bigint;
}

export function familyLabel(family: Family | undefined): string {
  return family === 4 ? "IPv4" : family === 6 ? "IPv6" : "-";
}

/** Allocation objects of range `namespace/name` among `allocations` (by spec.range.name, else label). */
export function allocationsOf(
  namespace: string,
  name: string,
  allocations: readonly IPAMAllocation[],
): IPAMAllocation[] {
  return allocations.filter(
    (a) =>
      (a.metadata.namespace ?? "") === namespace &&
      (a.spec?.range?.name ?? a.metadata.labels?.["ipam.mandelsoft.org/range"]) === name,
  );
}

function compareCidrs(a: Cidr, b: Cidr): number {
  if (a.start !== b.start) return a.start < b.start ? -1 : 1;
  return a.prefix - b.prefix;
}

/**
 * Builds the model of `range` from its spec and its allocation objects (`allocations` must be the
 * range's own; see `allocationsOf`). Objects being deleted still hold their block.
 */
export function rangeModel(range: IPAMRange, allocations: readonly IPAMAllocation[]): RangeModel {
  const namespace = range.metadata.namespace ?? "";
  const name = range.metadata.name ?? "";
  const ranges = Array.isArray(range.spec?.ranges) ? [...range.spec.ranges] : [];
  const valid = validateRangeSpec(range.spec);
  const base = {
    namespace,
    name,
    ranges,
    mode: range.spec?.mode || "FirstMatch",
    held: [] as HeldAllocation[],
    rejected: [] as RejectedAllocation[],
    allocated: 0n,
    largestFree: undefined,
    pendingRemovals: [] as Cidr[],
    ...poolFields(range, valid),
    excluded: 0n,
    cooling: [] as CoolingBlock[],
    coolingAddresses: 0n,
  };
  const parsed: HeldAllocation[] = [];
  for (const object of allocations) {
    const text = object.spec?.cidr ?? "";
    const cidr = Cidr.tryParse(text);
    if (cidr === undefined) {
      base.rejected.push({ name: object.metadata.name ?? "", cidr: text, reason: `"${text}" is not a CIDR` });
    } else {
      parsed.push({ cidr, object });
    }
  }
  if (!valid.ok) {
    // Nothing can be said about free space; the blocks are still held.
    parsed.sort((a, b) => compareCidrs(a.cidr, b.cidr));
    return {
      ...base,
      state: "Invalid",
      invalid: valid.message,
      family: undefined,
      pool: [],
      allocator: undefined,
      held: parsed,
      size: 0n,
      free: 0n,
    };
  }
  const state = range.status?.state ?? "Unknown";
  const family = valid.family ?? parsed[0]?.cidr.family;
  if (family === undefined) {
    return { ...base, state, invalid: undefined, family, pool: [], allocator: undefined, size: 0n, free: 0n };
  }
  const { allocator, rejected } = Allocator.rebuild(
    {
      family,
      blocks: valid.blocks,
      mode: valid.mode,
      exclusions: valid.exclusions,
      cooling: coolingOf(range, family),
    },
    parsed.map((p) => p.cidr),
    { keepOutside: true },
  );
  // The allocator reports rejections by block; match them back to their objects (first unmatched one).
  const rejectedObjects = new Set<HeldAllocation>();
  for (const r of rejected) {
    const match = parsed.find((p) => !rejectedObjects.has(p) && p.cidr === r.cidr);
    if (match) {
      rejectedObjects.add(match);
      base.rejected.push({
        name: match.object.metadata.name ?? "",
        cidr: match.cidr.toString(),
        reason: r.reason,
      });
    }
  }
  const held = parsed.filter((p) => !rejectedObjects.has(p)).sort((a, b) => compareCidrs(a.cidr, b.cidr));
  const usage = allocator.usage();
  return {
    ...base,
    state,
    invalid: undefined,
    family,
    pool: allocator.blocks(),
    allocator,
    held,
    size: usage.total,
    allocated: usage.allocated,
    free: usage.free,
    largestFree: usage.largestFree,
    pendingRemovals: [...allocator.pendingRemovals(), ...allocator.excludedAllocations()]
      .filter((c, i, all) => all.findIndex((d) => d.equals(c)) === i)
      .sort(compareCidrs),
    excluded: usage.excluded,
    cooling: allocator.coolingBlocks(),
    coolingAddresses: usage.cooling,
  };
}

/** The §7 fields as written (the cooldown only when the spec is valid). */
function poolFields(range: IPAMRange, valid: ReturnType<typeof validateRangeSpec>) {
  return {
    exclude: Array.isArray(range.spec?.exclude) ? [...range.spec.exclude] : [],
    gateway: range.spec?.gateway || undefined,
    cooldownSeconds: valid.ok ? valid.cooldownSeconds : 0,
  };
}

/** The range's status.cooling, entry by entry (junk is left out: the controller drops it too). */
function coolingOf(range: IPAMRange, family: Family): CoolingBlock[] {
  const blocks: CoolingBlock[] = [];
  for (const entry of range.status?.cooling ?? []) {
    try {
      blocks.push(...parseCooling([entry], family));
    } catch {
      // not a cooling entry
    }
  }
  return blocks;
}
