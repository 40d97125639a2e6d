// The small interfaces through which the IPAM reconcilers touch the world; setup.ts implements them
// over the runtime's client, informers and queues (writer.ts, metrics.ts), test/harness/fake-ports.ts fakes them.

import type { PoolRef } from "../api/pool-ref.ts";
import type {
  IPAMAllocation,
  IPAMRangeStatus,
  IPAMRequest,
  IPAMRequestStatus,
  RangeObject,
} from "../api/types.ts";

/** A read-only view of an informer's store. Keys are `namespace/name` (cluster-scoped: `name`). */
export interface Cache<T> {
  get(key: string): T | undefined;
  list(): T[];
  byIndex(index: string, value: string): T[];
}

export interface Queue {
  add(key: string): void;
  addAfter(key: string, delayMs: number): void;
}

/** Writes of the IPAM controller. Errors carry the HTTP `status` (see statusOf). */
export interface IpamWriter {
  createAllocation(allocation: IPAMAllocation): Promise<IPAMAllocation>;
  getAllocation(namespace: string, name: string): Promise<IPAMAllocation | undefined>;
  /** Deletes if present (with a uid precondition when given); a missing object is success. */
  deleteAllocation(namespace: string, name: string, uid?: string): Promise<void>;
  getRequest(namespace: string, name: string): Promise<IPAMRequest | undefined>;
  /** With `resourceVersion`, only if the request is still at that version (409 otherwise). */
  patchRequestStatus(
    request: IPAMRequest,
    status: IPAMRequestStatus,
    resourceVersion?: string,
  ): Promise<IPAMRequest>;
  /** Adds or removes kubipam's finalizer; returns the request's resourceVersion afterwards. */
  setRequestFinalizer(request: IPAMRequest, present: boolean): Promise<string | undefined>;
  setRangeFinalizer(range: RangeObject, present: boolean): Promise<void>;
  patchRangeStatus(range: RangeObject, status: IPAMRangeStatus): Promise<void>;
}

/**
 * The allocation fence: a lease only one writer holds at a time. confirm() proves with a
 * compare-and-swap write that this process still holds it; nothing is published unless a confirm
 * that started after the block's IPAMAllocation object was created succeeded.
 */
export interface Fence {
  confirm(): Promise<boolean>;
}

export type EventType = "Normal" | "Warning";

export interface EventSink {
  emit(
    object: {
      apiVersion: string;
      kind: string;
      metadata: { name?: string; namespace?: string; uid?: string };
    },
    type: EventType,
    reason: string,
    note: string,
    /** `low`: nice to have (one per allocation); written when nothing else waits, shed first. */
    priority?: "low",
  ): void;
}

export interface IpamMetrics {
  allocated(pool: PoolRef, latencySeconds: number | undefined): void;
  released(pool: PoolRef): void;
  failed(pool: PoolRef, reason: "busy" | "invalid" | "conflict"): void;
  rangeUsage(pool: PoolRef, usage: RangeUsageFigures): void;
  rangeGone(pool: PoolRef): void;
}

/** A range's usage as its metrics show it (as in its status: size, allocated, free, excluded, cooling). */
export interface RangeUsageFigures {
  size: bigint;
  allocated: bigint;
  free: bigint;
  excluded: bigint;
  cooling: bigint;
}

export interface Log {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** HTTP status of an API error, if it is one. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "status" in err) {
    const status = (err as { status: unknown }).status;
    if (typeof status === "number") return status;
  }
  return undefined;
}
