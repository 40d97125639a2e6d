// The pure parts of the status writer (status.ts): the status a range gets from its state, the
// conditions of a published block's placement, and the comparisons that let a write be skipped.

import {
  ConditionType,
  RangeReadyReason as RangeReason,
  RequestAdmittedReason,
  RequestInRangeReason,
  RequestReadyReason as RequestReason,
} from "../api/conditions.ts";
import type {
  IPAMRange,
  IPAMRangeStatus,
  IPAMRequestStatus,
  RangeState as RangePhase,
  RequestState,
} from "../api/types.ts";
import type { Allocator, Cidr, Usage } from "../ipam/index.ts";
import { conditionsEqual, setCondition } from "../runtime/conditions.ts";
import type { PoolState } from "./pool-state.ts";

/** Where a published block stands against its range's current spec. */
export interface Placement {
  outside: boolean;
  admitted: boolean;
  /** The exclusion (entry as written) the block overlaps, when one was added after it. */
  excluded?: string | undefined;
}

/** The status of a range in `phase`, and the usage it reports (undefined without an allocator). */
export function rangeStatusOf(
  range: IPAMRange,
  state: PoolState,
  phase: RangePhase,
  message: string,
  now: Date,
): { status: IPAMRangeStatus; usage: Usage | undefined } {
  const allocator = state.currentAllocator();
  const usage = allocator?.usage();
  const generation = range.metadata.generation;
  const ready = { type: ConditionType.Ready, status: phase === "Ready" ? "True" : "False" } as const;
  const condition = { ...ready, reason: rangeReason[phase], message, observedGeneration: generation };
  const status: IPAMRangeStatus = {
    state: phase,
    message,
    observedGeneration: generation,
    conditions: setCondition(range.status?.conditions, condition, now),
    // size = allocated + free + excluded + cooling: excluded and cooling addresses are not free.
    size: (usage?.total ?? 0n).toString(),
    allocated: (usage?.allocated ?? 0n).toString(),
    free: (usage?.free ?? 0n).toString(),
    excludedAddresses: (usage?.excluded ?? 0n).toString(),
    coolingAddresses: (usage?.cooling ?? 0n).toString(),
    roundRobin: state.exportCursors(),
    pendingRemovals: pendingRemovals(allocator),
    cooling: state.exportCooling(),
  };
  return { status, usage };
}

const rangeReason: Record<RangePhase, string> = {
  Ready: RangeReason.Valid,
  Invalid: RangeReason.InvalidSpec,
  Deleting: RangeReason.Deleting,
};

export type Condition = Omit<NonNullable<IPAMRequestStatus["conditions"]>[number], "lastTransitionTime">;

export const readyReason: Record<RequestState, string> = {
  Ready: RequestReason.Allocated,
  Busy: RequestReason.NoSpace,
  Invalid: RequestReason.Invalid,
};

/** InRange and Admitted of a published block; their message is the request's when False. */
export function placementConditions(
  { outside, admitted, excluded }: Placement,
  message: string,
): Condition[] {
  const inRange = !outside && excluded === undefined;
  return [
    {
      type: ConditionType.InRange,
      status: inRange ? "True" : "False",
      reason: outside
        ? RequestInRangeReason.RangeShrunk
        : inRange
          ? RequestInRangeReason.InsideRange
          : RequestInRangeReason.Excluded,
      message: inRange ? "" : message,
    },
    {
      type: ConditionType.Admitted,
      status: admitted ? "True" : "False",
      reason: admitted ? RequestAdmittedReason.NamespaceAdmitted : RequestAdmittedReason.ConsentWithdrawn,
      message: admitted ? "" : message,
    },
  ];
}

/**
 * Blocks that stay only until released: outside the pool (removed from spec.ranges) or over an
 * exclusion added after them; ascending, each once.
 */
function pendingRemovals(allocator: Allocator | undefined): string[] {
  if (!allocator) return [];
  const blocks = new Map<string, Cidr>();
  for (const cidr of [...allocator.pendingRemovals(), ...allocator.excludedAllocations()]) {
    blocks.set(cidr.toString(), cidr);
  }
  return [...blocks.values()]
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.prefix - b.prefix))
    .map(String);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function sameStrings(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export function sameRequestStatus(a: IPAMRequestStatus | undefined, b: IPAMRequestStatus): boolean {
  return (
    a !== undefined &&
    a.state === b.state &&
    (a.message ?? "") === (b.message ?? "") &&
    (a.cidr ?? "") === (b.cidr ?? "") &&
    a.observedGeneration === b.observedGeneration &&
    conditionsEqual(a.conditions, b.conditions)
  );
}

export function sameRangeStatus(a: IPAMRangeStatus | undefined, b: IPAMRangeStatus): boolean {
  return (
    a !== undefined &&
    a.state === b.state &&
    (a.message ?? "") === (b.message ?? "") &&
    a.observedGeneration === b.observedGeneration &&
    a.size === b.size &&
    a.allocated === b.allocated &&
    a.free === b.free &&
    a.excludedAddresses === b.excludedAddresses &&
    a.coolingAddresses === b.coolingAddresses &&
    sameStrings(a.roundRobin, b.roundRobin) &&
    sameStrings(a.pendingRemovals, b.pendingRemovals) &&
    sameStrings(a.cooling, b.cooling) &&
    conditionsEqual(a.conditions, b.conditions)
  );
}
