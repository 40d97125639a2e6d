// The one writer of what users read: request and range status (with conditions and the reason
// constants below), the events that go with a change of state, and the usage metrics. Reconcilers
// decide; they hand their outcome to this writer.

import { ConditionType, EventReason, RequestReadyReason as RequestReason } from "../api/conditions.ts";
import type {
  IPAMRangeStatus,
  IPAMRequest,
  IPAMRequestStatus,
  RangeObject,
  RangeState as RangePhase,
  RequestState,
} from "../api/types.ts";
import { setCondition } from "../runtime/conditions.ts";
import type { PoolState } from "./pool-state.ts";
import type { EventSink, IpamMetrics, IpamWriter, Log } from "./ports.ts";
import { statusOf } from "./ports.ts";
import {
  type Condition,
  errorMessage,
  type Placement,
  placementConditions,
  rangeStatusOf,
  readyReason,
  sameRangeStatus,
  sameRequestStatus,
} from "./status-parts.ts";

export { errorMessage, type Placement, sameStrings } from "./status-parts.ts";

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
  /** The tail of each range's status writes (they run one after another). */
  private readonly rangeWrites = new Map<string, Promise<void>>();
  /** A cooling write waiting for its turn, by range key. */
  private readonly coolingWrites = new Map<string, Promise<void>>();

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
   * Forbidden) or `rejected by the API server: <message>` (reason Rejected); Ready=False and no state
   * unless it is allocated already — and emits a Warning event. Guarded by the cached resourceVersion,
   * so it never overwrites a newer status (e.g. another writer's allocation); best effort, the error
   * is logged anyway.
   */
  async rejected(request: IPAMRequest, err: unknown): Promise<void> {
    const forbidden = statusOf(err) === 403;
    const reason = forbidden ? RequestReason.Forbidden : RequestReason.Rejected;
    const message = `${forbidden ? "forbidden" : "rejected by the API server"}: ${errorMessage(err)}`;
    if (request.status?.message === message) return;
    const generation = request.metadata.generation;
    const allocated = Boolean(request.status?.cidr);
    const conditions = allocated
      ? request.status?.conditions
      : setCondition(
          request.status?.conditions,
          { type: ConditionType.Ready, status: "False", reason, message, observedGeneration: generation },
          this.d.now(),
        );
    try {
      await this.d.writer.patchRequestStatus(
        request,
        // Not allocated: a state written earlier (e.g. Invalid while the range was not in the cache
        // yet) was a judgment this reconcile got past; kept, it would contradict the message.
        {
          ...request.status,
          ...(allocated ? {} : { state: undefined }),
          message,
          observedGeneration: generation,
          conditions,
        },
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
  range(range: RangeObject, state: PoolState, phase: RangePhase, message: string): Promise<void> {
    // Composed when its turn comes: range status writes of one range go out one after another, so the
    // last one to land shows every cooldown announced before it (see cooling()).
    return this.inTurn(state.key, () => this.writeRange(range, state, phase, message));
  }

  private async writeRange(range: RangeObject, state: PoolState, phase: RangePhase, message: string) {
    const { status, usage } = rangeStatusOf(range, state, phase, message, this.d.now());
    if (usage) {
      const { total: size, allocated, free, excluded, cooling } = usage;
      this.d.metrics.rangeUsage(state.ref, { size, allocated, free, excluded, cooling });
    }
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
    if (range.status?.state === phase) return;
    const ready = phase === "Ready";
    const reason = ready
      ? EventReason.Ready
      : phase === "Deleting"
        ? EventReason.Deleting
        : EventReason.Invalid;
    this.d.events.emit(range, ready ? "Normal" : "Warning", reason, message || "range is ready");
  }

  /**
   * Writes status.cooling alone (with the releases announced so far) and resolves once it stands:
   * called before a released block's record is deleted, so a crash cannot lose its cooldown. Callers
   * that come while a write waits for its turn share it (it is composed when it starts).
   */
  cooling(range: RangeObject, state: PoolState): Promise<void> {
    const waiting = this.coolingWrites.get(state.key);
    if (waiting) return waiting;
    const write = this.inTurn(state.key, async () => {
      this.coolingWrites.delete(state.key);
      // The full status written next compares with the cache, which now shows this list.
      this.writtenRangeStatus.set(state.key, undefined);
      await this.d.writer.patchRangeStatus(range, { cooling: state.exportCooling() });
    });
    this.coolingWrites.set(state.key, write);
    return write;
  }

  /** Runs `write` after the range's earlier status writes have settled. */
  private inTurn(key: string, write: () => Promise<void>): Promise<void> {
    const previous = this.rangeWrites.get(key) ?? Promise.resolve();
    const run = previous.then(write);
    const settled = run.catch(() => undefined);
    this.rangeWrites.set(key, settled);
    void settled.then(() => {
      if (this.rangeWrites.get(key) === settled) this.rangeWrites.delete(key);
    });
    return run;
  }

  /** The range is gone: forget what was written for it. */
  rangeGone(state: PoolState): void {
    this.writtenRangeStatus.delete(state.key);
    this.d.metrics.rangeGone(state.ref);
  }
}
