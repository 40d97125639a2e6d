// Wires the IPAM reconcilers to the runtime: three informers, three work queues, and the start-up
// order that makes a restart safe (caches synced → ledger rebuilt → workers started).

import {
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRequest,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../api/types.ts";
import { Controller } from "../runtime/controller.ts";
import { Informer } from "../runtime/informer.ts";
import type { KubeClient } from "../runtime/kube.ts";
import type { Logger } from "../runtime/logger.ts";
import type { Registry } from "../runtime/metrics.ts";
import {
  ALLOCATIONS_BY_REQUEST,
  allocationRequestIndex,
  IpamController,
  REQUESTS_BY_RANGE,
  requestRangeIndex,
} from "./ipam-controller.ts";
import { PrometheusIpamMetrics } from "./metrics.ts";
import type { EventSink } from "./ports.ts";
import { KubeIpamWriter } from "./writer.ts";

export interface IpamManagerOptions {
  client: KubeClient;
  logger: Logger;
  registry: Registry;
  events: EventSink;
  /** Concurrent request reconciles (ranges and garbage collection get a quarter, at least one). */
  workers?: number;
  /** Delay before a range's usage status is written after allocations change (default 1 s). */
  rangeStatusDelayMs?: number;
}

export interface IpamManager {
  /** Resolves once every cache is synced and the ledgers are rebuilt; false if aborted first. */
  readonly ready: Promise<boolean>;
  /** Runs until the signal aborts; resolves after a graceful stop. */
  readonly done: Promise<void>;
  readonly controller: IpamController;
}

export function startIpamManager(options: IpamManagerOptions, signal: AbortSignal): IpamManager {
  const { client, logger, registry } = options;
  const workers = Math.max(1, options.workers ?? 8);
  const side = Math.max(1, Math.ceil(workers / 4));

  const ranges = new Informer<IPAMRange>(client, ipamRangeResource, { logger, registry });
  const requests = new Informer<IPAMRequest>(client, ipamRequestResource, { logger, registry });
  const allocations = new Informer<IPAMAllocation>(client, ipamAllocationResource, { logger, registry });
  requests.addIndex(REQUESTS_BY_RANGE, requestRangeIndex);
  allocations.addIndex(ALLOCATIONS_BY_REQUEST, allocationRequestIndex);

  // The reconcile closures run only after start, when `controller` below exists.
  const rangeController = new Controller({
    name: "ipamrange",
    workers: side,
    logger,
    registry,
    reconcile: (key) => controller.reconcileRange(key),
  });
  const requestController = new Controller({
    name: "ipamrequest",
    workers,
    logger,
    registry,
    reconcile: (key) => controller.reconcileRequest(key),
  });
  const allocationController = new Controller({
    name: "ipamallocation",
    workers: side,
    logger,
    registry,
    reconcile: (key) => controller.reconcileAllocation(key),
  });

  const controller = new IpamController({
    ranges,
    requests,
    allocations,
    rangeQueue: {
      add: (k) => rangeController.enqueue(k),
      addAfter: (k, ms) => rangeController.enqueueAfter(k, ms),
    },
    requestQueue: {
      add: (k) => requestController.enqueue(k),
      addAfter: (k, ms) => requestController.enqueueAfter(k, ms),
    },
    allocationQueue: {
      add: (k) => allocationController.enqueue(k),
      addAfter: (k, ms) => allocationController.enqueueAfter(k, ms),
    },
    writer: new KubeIpamWriter(client),
    events: options.events,
    metrics: new PrometheusIpamMetrics(registry),
    log: logger.withName("ipam"),
    rangeStatusDelayMs: options.rangeStatusDelayMs,
  });

  // Until the ledgers are rebuilt, allocation events only feed the ledger (bootstrap replays them).
  let bootstrapped = false;
  ranges.addEventHandler({
    onAdd: (r) => {
      if (bootstrapped) controller.onRangeChange(r);
    },
    onUpdate: (old, r) => {
      if (bootstrapped) controller.onRangeChange(r, old);
    },
    onDelete: (r) => {
      if (bootstrapped) controller.onRangeDelete(r);
    },
  });
  requests.addEventHandler({
    onAdd: (r) => {
      if (bootstrapped) controller.onRequestChange(r);
    },
    onUpdate: (old, r) => {
      if (bootstrapped) controller.onRequestChange(r, old);
    },
    onDelete: (r) => {
      if (bootstrapped) controller.onRequestDelete(r);
    },
  });
  allocations.addEventHandler({
    onAdd: (a) => {
      if (bootstrapped) controller.onAllocationUpsert(a);
    },
    onUpdate: (_old, a) => {
      if (bootstrapped) controller.onAllocationUpsert(a);
    },
    onDelete: (a) => {
      if (bootstrapped) controller.onAllocationDelete(a);
    },
  });

  const informers = [ranges, requests, allocations];
  for (const informer of informers) void informer.start(signal);

  const ready = (async () => {
    const synced = await Promise.all(informers.map((i) => i.waitForSync(signal)));
    if (!synced.every(Boolean) || signal.aborted) return false;
    controller.bootstrap();
    bootstrapped = true;
    logger.info("caches synced and allocations rebuilt", {
      ranges: ranges.size,
      requests: requests.size,
      allocations: allocations.size,
    });
    return true;
  })();

  const done = (async () => {
    if (!(await ready)) return;
    await Promise.all([
      rangeController.start(signal),
      requestController.start(signal),
      allocationController.start(signal),
    ]);
    for (const informer of informers) informer.stop();
  })();

  return { ready, done, controller };
}
