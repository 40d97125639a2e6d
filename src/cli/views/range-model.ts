// A range as the engine sees it: its spec parsed into pool blocks and its IPAMAllocation objects loaded
// into an Allocator (allocations outside the pool kept as pending removals), so that the views show
// the true state even when the range's status lags behind.

import {
  CLUSTER_RANGE_KIND,
  DEFAULT_CLUSTER_ALLOCATION_NAMESPACE,
  type PoolKind,
  type PoolRef,
  poolKey,
  poolOfObject,
  poolOfRecord,
} from "../../api/pool-ref.ts";
import type { IPAMAllocation, RangeObject } from "../../api/types.ts";
import { validateRangeObject } from "../../api/validation.ts";
import { type Allocator, Cidr, type CoolingBlock, type Family } from "../../ipam/index.ts";
import { rebuildRange } from "./rebuild.ts";

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
  kind: PoolKind;
  /** Empty for a ClusterIPAMRange. */
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

/**
 * Allocation objects of IPAMRange `namespace/name` among `allocations` (by spec.range.name, else
 * label); records of a ClusterIPAMRange of the same name in that namespace are not its.
 */
export function allocationsOf(
  namespace: string,
  name: string,
  allocations: readonly IPAMAllocation[],
): IPAMAllocation[] {
  return allocations.filter(
    (a) =>
      (a.metadata.namespace ?? "") === namespace &&
      a.spec?.range?.kind !== CLUSTER_RANGE_KIND &&
      (a.spec?.range?.name ?? a.metadata.labels?.["ipam.mandelsoft.org/range"]) === name,
  );
}

/** Allocation objects of a pool of either kind (a ClusterIPAMRange's in the cluster allocation namespace). */
export function allocationsOfPool(
  ref: PoolRef,
  allocations: readonly IPAMAllocation[],
  clusterAllocationNamespace = DEFAULT_CLUSTER_ALLOCATION_NAMESPACE,
): IPAMAllocation[] {
  if (ref.kind !== CLUSTER_RANGE_KIND) return allocationsOf(ref.namespace, ref.name, allocations);
  const key = poolKey(ref);
  return allocations.filter((a) => {
    const pool = poolOfRecord(a, clusterAllocationNamespace);
    return pool !== undefined && pool.kind === CLUSTER_RANGE_KIND && poolKey(pool) === key;
  });
}

/** How the views name a range: `namespace/name`, or `ClusterIPAMRange/name`. */
export function rangeLabel(ref: PoolRef): string {
  return ref.kind === CLUSTER_RANGE_KIND
    ? `${CLUSTER_RANGE_KIND}/${ref.name}`
    : `${ref.namespace}/${ref.name}`;
}

function compareCidrs(a: Cidr, b: Cidr): number {
  if (a.start !== b.start) return a.start < b.start ? -1 : 1;
  return a.prefix - b.prefix;
}

/**
 * Builds the model of `range` from its spec and its allocation objects (`allocations` must be the
 * range's own; see `allocationsOf`). Objects being deleted still hold their block.
 */
export function rangeModel(range: RangeObject, allocations: readonly IPAMAllocation[]): RangeModel {
  const { kind, namespace, name } = poolOfObject(range);
  const ranges = Array.isArray(range.spec?.ranges) ? [...range.spec.ranges] : [];
  const valid = validateRangeObject(range);
  const base = {
    kind,
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
  const { allocator, held, rejected } = rebuildRange(valid, family, range.status?.cooling, parsed);
  for (const { item, reason } of rejected) {
    base.rejected.push({ name: item.object.metadata.name ?? "", cidr: item.cidr.toString(), reason });
  }
  held.sort((a, b) => compareCidrs(a.cidr, b.cidr));
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
function poolFields(range: RangeObject, valid: ReturnType<typeof validateRangeObject>) {
  return {
    exclude: Array.isArray(range.spec?.exclude) ? [...range.spec.exclude] : [],
    gateway: range.spec?.gateway || undefined,
    cooldownSeconds: valid.ok ? valid.cooldownSeconds : 0,
  };
}
