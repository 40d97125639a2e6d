// What every IPAM reconciler works with: the ports (caches, queues, writer, fence, events, metrics,
// log), the ledger (the one owner of allocation state) and the status writer.

import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../api/types.ts";
import type { ClaimDeps } from "./claim-ports.ts";
import type { HolderRegistry } from "./holders.ts";
import type { Ledger } from "./ledger.ts";
import type { Cache, EventSink, Fence, IpamMetrics, IpamWriter, Log, Queue } from "./ports.ts";
import type { StatusWriter } from "./status.ts";

export interface IpamControllerDeps {
  ranges: Cache<IPAMRange>;
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
