// The one writer of what users read: request and range status (with conditions and the reason
// constants below), the events that go with a change of state, and the usage metrics. Reconcilers
// decide; they hand their outcome to this writer.

import {
  ConditionType,
  EventReason,
  RangeReadyReason as RangeReason,
  RequestAdmittedReason,
  RequestInRangeReason,
  RequestReadyReason as RequestReason,
} from "../api/conditions.ts";
import type {
  IPAMRangeStatus,
  IPAMRequest,
  IPAMRequestStatus,
  RangeObject,
  RangeState as RangePhase,
  RequestState,
} from "../api/types.ts";
import { conditionsEqual, setCondition } from "../runtime/conditions.ts";
import type { PoolState } from "./pool-state.ts";
import type { EventSink, IpamMetrics, IpamWriter, Log } from "./ports.ts";
import { statusOf } from "./ports.ts";

/** Where a published block stands against its range's current spec. */
export interface Placement {
  outside: boolean;
  admitted: boolean;
}

/** What a request reconcile decided the request's status is. */
export interface RequestStatusOutcome {
  state: RequestState;
  message: string;
  /** Default: the cidr the request already has. */
  cidr?: string;
  placement?: Placement;
}

export interface StatusDeps {
  writer: IpamWriter;
  events: EventSink;
  metrics: IpamMetrics;
  log: Log;
  now: () => Date;
}

export class StatusWriter {
  /** The range status this process last wrote, by range key; undefined while a write's outcome is unknown. */
  private readonly writtenRangeStatus = new Map<string, IPAMRangeStatus | undefined>();

  constructor(private readonly d: StatusDeps) {}

  /** Writes the request's status unless it already says this; a Warning event on a new bad state. */
  async request(request: IPAMRequest, outcome: RequestStatusOutcome): Promise<void> {
    const { state, message } = outcome;
    const cidr = outcome.cidr ?? request.status?.cidr;
    const status = this.requestStatus(request, state, message, cidr, outcome.placement);
    if (sameRequestStatus(request.status, status)) return;
    await this.d.writer.patchRequestStatus(request, status);
    if (state !== "Ready" && request.status?.state !== state) {
      this.d.events.emit(
        request,
        "Warning",
        state === "Busy" ? EventReason.Busy : EventReason.Invalid,
        message,
      );
    }
  }

  /** The status a request gets (conditions Ready, and for a published block InRange and Admitted). */
  requestStatus(
    request: IPAMRequest,
    state: RequestState,
    message: string,
    cidr: string | undefined,
    placement: Placement = { outside: false, admitted: true },
  ): IPAMRequestStatus {
    const generation = request.metadata.generation;
    const now = this.d.now();
    const ready: Condition = {
      type: ConditionType.Ready,
      status: state === "Ready" ? "True" : "False",
      reason: readyReason[state],
      message,
      observedGeneration: generation,
    };
    let conditions = setCondition(request.status?.conditions, ready, now);
    if (cidr) {
      for (const c of placementConditions(placement, message)) {
        conditions = setCondition(conditions, { ...c, observedGeneration: generation }, now);
      }
    }
    return { state, message, ...(cidr ? { cidr } : {}), observedGeneration: generation, conditions };
  }

  /**
   * Writes what the API server refused to the request's status — `forbidden: <API message>` (reason
   * Forbidden) or `rejected by the API server: <message>` (reason Rejected); Ready=False unless it is
   * allocated already — and emits a Warning event. Guarded by the cached resourceVersion, so it never
   * overwrites a newer status (e.g. another writer's allocation); best effort, the error is logged anyway.
   */
  async rejected(request: IPAMRequest, err: unknown): Promise<void> {
    const forbidden = statusOf(err) === 403;
    const reason = forbidden ? RequestReason.Forbidden : RequestReason.Rejected;
    const message = `${forbidden ? "forbidden" : "rejected by the API server"}: ${errorMessage(err)}`;
    if (request.status?.message === message) return;
    const generation = request.metadata.generation;
    const conditions = request.status?.cidr
      ? request.status.conditions
      : setCondition(
          request.status?.conditions,
          { type: ConditionType.Ready, status: "False", reason, message, observedGeneration: generation },
          this.d.now(),
        );
    try {
      await this.d.writer.patchRequestStatus(
        request,
        { ...request.status, message, observedGeneration: generation, conditions },
        request.metadata.resourceVersion,
      );
    } catch (writeErr) {
      this.d.log.debug("could not report the refused write on the request", {
        request: `${request.metadata.namespace}/${request.metadata.name}`,
        error: writeErr,
      });
      return;
    }
    this.d.events.emit(request, "Warning", forbidden ? EventReason.Forbidden : EventReason.Rejected, message);
  }

  /** Writes the range's state, usage and cursors unless the cache and our last write agree already. */
  async range(range: RangeObject, state: PoolState, phase: RangePhase, message: string): Promise<void> {
    const status = this.rangeStatus(range, state, phase, message);
    // The cache may not show our last write yet, and a write that failed may have been applied
    // anyway: skip only when the cache and our last write (if any, and if it surely succeeded) agree.
    const written = this.writtenRangeStatus.get(state.key);
    const writtenAgrees = this.writtenRangeStatus.has(state.key)
      ? written !== undefined && sameRangeStatus(written, status)
      : true;
    if (sameRangeStatus(range.status, status) && writtenAgrees) return;
    this.writtenRangeStatus.set(state.key, undefined);
    await this.d.writer.patchRangeStatus(range, status);
    this.writtenRangeStatus.set(state.key, status);
    if (range.status?.state !== phase) {
      const ready = phase === "Ready";
      const reason = ready
        ? EventReason.Ready
        : phase === "Deleting"
          ? EventReason.Deleting
          : EventReason.Invalid;
      this.d.events.emit(range, ready ? "Normal" : "Warning", reason, message || "range is ready");
    }
  }

  /** The range is gone: forget what was written for it. */
  rangeGone(state: PoolState): void {
    this.writtenRangeStatus.delete(state.key);
    this.d.metrics.rangeGone(state.ref);
  }

  private rangeStatus(
    range: RangeObject,
    state: PoolState,
    phase: RangePhase,
    message: string,
  ): IPAMRangeStatus {
    const allocator = state.currentAllocator();
    const usage = allocator?.usage();
    const generation = range.metadata.generation;
    const reason =
      phase === "Ready"
        ? RangeReason.Valid
        : phase === "Invalid"
          ? RangeReason.InvalidSpec
          : RangeReason.Deleting;
    if (usage) {
      this.d.metrics.rangeUsage(state.ref, {
        size: usage.total,
        allocated: usage.allocated,
        free: usage.free,
      });
    }
    return {
      state: phase,
      message,
      observedGeneration: generation,
      conditions: setCondition(
        range.status?.conditions,
        {
          type: ConditionType.Ready,
          status: phase === "Ready" ? "True" : "False",
          reason,
          message,
          observedGeneration: generation,
        },
        this.d.now(),
      ),
      size: (usage?.total ?? 0n).toString(),
      allocated: (usage?.allocated ?? 0n).toString(),
      free: (usage?.free ?? 0n).toString(),
      roundRobin: state.exportCursors(),
      pendingRemovals: (allocator?.pendingRemovals() ?? []).map((c) => c.toString()),
    };
  }
}

type Condition = Omit<NonNullable<IPAMRequestStatus["conditions"]>[number], "lastTransitionTime">;

const readyReason: Record<RequestState, string> = {
  Ready: RequestReason.Allocated,
  Busy: RequestReason.NoSpace,
  Invalid: RequestReason.Invalid,
};

/** InRange and Admitted of a published block; their message is the request's when False. */
function placementConditions({ outside, admitted }: Placement, message: string): Condition[] {
  return [
    {
      type: ConditionType.InRange,
      status: outside ? "False" : "True",
      reason: outside ? RequestInRangeReason.RangeShrunk : RequestInRangeReason.InsideRange,
      message: outside ? message : "",
    },
    {
      type: ConditionType.Admitted,
      status: admitted ? "True" : "False",
      reason: admitted ? RequestAdmittedReason.NamespaceAdmitted : RequestAdmittedReason.ConsentWithdrawn,
      message: admitted ? "" : message,
    },
  ];
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function sameStrings(a: string[] | undefined, b: string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function sameRequestStatus(a: IPAMRequestStatus | undefined, b: IPAMRequestStatus): boolean {
  return (
    a !== undefined &&
    a.state === b.state &&
    (a.message ?? "") === (b.message ?? "") &&
    (a.cidr ?? "") === (b.cidr ?? "") &&
    a.observedGeneration === b.observedGeneration &&
    conditionsEqual(a.conditions, b.conditions)
  );
}

function sameRangeStatus(a: IPAMRangeStatus | undefined, b: IPAMRangeStatus): boolean {
  return (
    a !== undefined &&
    a.state === b.state &&
    (a.message ?? "") === (b.message ?? "") &&
    a.observedGeneration === b.observedGeneration &&
    a.size === b.size &&
    a.allocated === b.allocated &&
    a.free === b.free &&
    sameStrings(a.roundRobin, b.roundRobin) &&
    sameStrings(a.pendingRemovals, b.pendingRemovals) &&
    conditionsEqual(a.conditions, b.conditions)
  );
}
