// `kubectl ipam usage`: per range size, allocated, free, percent and a bar, exact for IPv6.

import { CLUSTER_RANGE_KIND, type PoolKind, poolOfObject } from "../../api/pool-ref.ts";
import type { IPAMAllocation, RangeObject } from "../../api/types.ts";
import { type Column, formatPercent, percentNumber, renderTable, usageBar } from "./format.ts";
import { allocationsOfPool, familyLabel, type RangeModel, rangeModel } from "./range-model.ts";

export interface UsageRow {
  kind: PoolKind;
  /** Empty for a ClusterIPAMRange. */
  namespace: string;
  name: string;
  state: string;
  family: string;
  mode: string;
  ranges: string[];
  size: bigint;
  allocated: bigint;
  free: bigint;
  /** Allocation objects the range holds (including pending removals and rejected ones). */
  allocations: number;
  /** Prefix length of the largest free block. */
  largestFree: number | undefined;
  pendingRemovals: string[];
  /** Allocation objects that could not be taken (overlaps, junk): see `kubectl ipam check`. */
  conflicts: number;
  /** Why the range's spec is invalid. */
  message: string | undefined;
}

export function usageRowOf(model: RangeModel): UsageRow {
  return {
    kind: model.kind,
    namespace: model.namespace,
    name: model.name,
    state: model.state,
    family: familyLabel(model.family),
    mode: model.mode,
    ranges: model.ranges,
    size: model.size,
    allocated: model.allocated,
    free: model.free,
    allocations: model.held.length + model.rejected.length,
    largestFree: model.largestFree,
    pendingRemovals: model.pendingRemovals.map(String),
    conflicts: model.rejected.length,
    message: model.invalid,
  };
}

/** Cluster ranges first (they have no namespace), then by namespace and name. */
function compareRanges(a: RangeObject, b: RangeObject): number {
  const ka = `${a.kind === CLUSTER_RANGE_KIND ? "" : "~"}${a.metadata.namespace ?? ""}/${a.metadata.name ?? ""}`;
  const kb = `${b.kind === CLUSTER_RANGE_KIND ? "" : "~"}${b.metadata.namespace ?? ""}/${b.metadata.name ?? ""}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * One row per range (IPAMRanges and ClusterIPAMRanges); `allocations` may hold those of other ranges
 * too. A ClusterIPAMRange's records are those in `clusterAllocationNamespace`.
 */
export function usageRows(
  ranges: readonly RangeObject[],
  allocations: readonly IPAMAllocation[],
  clusterAllocationNamespace?: string,
): UsageRow[] {
  return [...ranges]
    .sort(compareRanges)
    .map((range) =>
      usageRowOf(
        rangeModel(range, allocationsOfPool(poolOfObject(range), allocations, clusterAllocationNamespace)),
      ),
    );
}

export interface TableOptions {
  /** Add the NAMESPACE column (kubectl does with -A). */
  namespaces?: boolean;
  wide?: boolean;
}

export function renderUsage(rows: readonly UsageRow[], options: TableOptions = {}): string {
  // With cluster ranges among the rows, a KIND column tells the two kinds apart.
  const kinds = rows.some((r) => r.kind === CLUSTER_RANGE_KIND);
  const columns: Column[] = [
    ...(kinds ? [{ header: "KIND" }] : []),
    ...(options.namespaces ? [{ header: "NAMESPACE" }] : []),
    { header: "NAME" },
    { header: "FAMILY" },
    { header: "SIZE", align: "right" },
    { header: "ALLOCATED", align: "right" },
    { header: "FREE", align: "right" },
    { header: "USED", align: "right" },
    { header: "" },
    ...(options.wide
      ? [
          { header: "STATE" },
          { header: "MODE" },
          { header: "BLOCKS", align: "right" as const },
          { header: "LARGEST-FREE" },
          { header: "PENDING-REMOVALS", align: "right" as const },
          { header: "CONFLICTS", align: "right" as const },
          { header: "RANGES" },
        ]
      : []),
  ];
  const body = rows.map((r) => {
    const invalid = r.message !== undefined;
    return [
      ...(kinds ? [r.kind] : []),
      ...(options.namespaces ? [r.namespace] : []),
      r.name,
      r.family,
      invalid ? "-" : r.size.toString(),
      invalid ? "-" : r.allocated.toString(),
      invalid ? "-" : r.free.toString(),
      invalid ? "-" : formatPercent(r.allocated, r.size),
      invalid ? `Invalid: ${r.message}` : usageBar(r.allocated, r.size),
      ...(options.wide
        ? [
            r.state,
            r.mode,
            String(r.allocations),
            r.largestFree === undefined ? "-" : `/${r.largestFree}`,
            String(r.pendingRemovals.length),
            String(r.conflicts),
            r.ranges.join(","),
          ]
        : []),
    ];
  });
  return renderTable(columns, body);
}

/** Plain data for -o json|yaml: exact counts as decimal strings, percent as a number. */
export function usageData(rows: readonly UsageRow[]): { items: Record<string, unknown>[] } {
  return {
    items: rows.map((r) => ({
      kind: r.kind,
      ...(r.kind === CLUSTER_RANGE_KIND ? {} : { namespace: r.namespace }),
      name: r.name,
      state: r.state,
      ...(r.message !== undefined ? { message: r.message } : {}),
      family: r.family,
      mode: r.mode,
      ranges: r.ranges,
      size: r.size.toString(),
      allocated: r.allocated.toString(),
      free: r.free.toString(),
      percent: percentNumber(r.allocated, r.size),
      allocations: r.allocations,
      ...(r.largestFree !== undefined ? { largestFree: r.largestFree } : {}),
      pendingRemovals: r.pendingRemovals,
      conflicts: r.conflicts,
    })),
  };
}
