// What every IPAM reconciler works with: the ports (caches, queues, writer, fence, events, metrics,
// log), the ledger (the one owner of allocation state) and the status writer.

import { CLUSTER_RANGE_KIND, describePool, type PoolRef, poolKey } from "../api/pool-ref.ts";
import type {
  ClusterIPAMRange,
  IPAMAllocation,
  IPAMRange,
  IPAMRequest,
  ObjectMeta,
  RangeObject,
} from "../api/types.ts";
import type { ClaimDeps } from "./claim-ports.ts";
import type { HolderRegistry } from "./holders.ts";
import type { Ledger } from "./ledger.ts";
import type { Cache, EventSink, Fence, IpamMetrics, IpamWriter, Log, Queue } from "./ports.ts";
import type { StatusWriter } from "./status.ts";

export interface IpamControllerDeps {
  ranges: Cache<IPAMRange>;
  /** ClusterIPAMRanges, keyed by name (absent: no cluster ranges are served). */
  clusterRanges?: Cache<ClusterIPAMRange>;
  /**
   * Why the ClusterIPAMRange cache cannot be trusted now (its CRD not installed, listing forbidden), or
   * undefined when it is complete.
   */
  clusterRangesUnavailable?: () => string | undefined;
  /** Namespaces, keyed by name: their labels decide a ClusterIPAMRange's consent. */
  namespaces?: Cache<{ metadata: ObjectMeta }>;
  /** Where the records of ClusterIPAMRanges live; the same for every controller (default kube-system). */
  clusterAllocationNamespace?: string;
  requests: Cache<IPAMRequest>;
  allocations: Cache<IPAMAllocation>;
  rangeQueue: Queue;
  requestQueue: Queue;
  allocationQueue: Queue;
  writer: IpamWriter;
  /** Nothing is published unless a confirm that started after the block's record was created succeeded. */
  fence: Fence;
  events: EventSink;
  metrics: IpamMetrics;
  log: Log;
  /** Emit a Normal `Allocated` event per allocation (low priority, shed first under load); default true. */
  allocationEvents?: boolean;
  /** Delay before a range's status (usage, cursors) is written after allocations change. */
  rangeStatusDelayMs?: number;
  now?: () => Date;
  /** Cluster API claims (claim-ports.ts); without them records of claims are never judged. */
  claims?: ClaimDeps;
}

export interface Context {
  readonly d: IpamControllerDeps;
  readonly ledger: Ledger;
  /** Access to the holders records name, by kind (holders.ts). */
  readonly holders: HolderRegistry;
  readonly status: StatusWriter;
  readonly now: () => Date;
}

/** Retry delay when this process does not hold the allocation fence (or could not confirm it). */
export const FENCE_RETRY_MS = 1000;

/** The range object a pool reference names, from the cache of its kind. */
export function rangeObject(d: IpamControllerDeps, ref: PoolRef): RangeObject | undefined {
  return ref.kind === CLUSTER_RANGE_KIND ? d.clusterRanges?.get(poolKey(ref)) : d.ranges.get(poolKey(ref));
}

/** Why no range object was found for `ref`: not found, or (for a ClusterIPAMRange) its kind not served. */
export function missingRangeMessage(d: IpamControllerDeps, ref: PoolRef): string {
  const why = ref.kind === CLUSTER_RANGE_KIND ? d.clusterRangesUnavailable?.() : undefined;
  return why ? `${describePool(ref)} cannot be read: ${why}` : `${describePool(ref)} not found`;
}
