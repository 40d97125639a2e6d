// Registers the IPAM reconcilers with the runtime's Manager: three shared informers, three work
// queues, and the start-up order that makes a restart safe (caches synced → ledgers and allocators
// rebuilt from the allocation objects → workers started). Runs only while leading.

import {
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRequest,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../api/types.ts";
import { Controller } from "../runtime/controller.ts";
import type { Manager } from "../runtime/manager.ts";
import {
  ALLOCATIONS_BY_REQUEST,
  allocationRequestIndex,
  IpamController,
  REQUESTS_BY_RANGE,
  requestRangeIndex,
} from "./ipam-controller.ts";
import { PrometheusIpamMetrics } from "./metrics.ts";
import type { EventSink, Queue } from "./ports.ts";
import { KubeIpamWriter } from "./writer.ts";

export interface IpamControllerOptions {
  /** Concurrent request reconciles (ranges and garbage collection get a quarter, at least one). */
  workers?: number;
  /** Delay before a range's usage status is written after allocations change (default 1 s). */
  rangeStatusDelayMs?: number;
  /** Where events go (default: the manager's events.k8s.io recorder). */
  events?: EventSink;
}

export interface IpamControllers {
  readonly controller: IpamController;
  /** Resolves once this process leads and its ledgers are rebuilt. */
  readonly bootstrapped: Promise<void>;
}

export function addIpamControllers(mgr: Manager, options: IpamControllerOptions = {}): IpamControllers {
  const workers = Math.max(1, options.workers ?? 8);
  const side = Math.max(1, Math.ceil(workers / 4));
  const ranges = mgr.informer<IPAMRange>(ipamRangeResource);
  const requests = mgr.informer<IPAMRequest>(ipamRequestResource);
  const allocations = mgr.informer<IPAMAllocation>(ipamAllocationResource);
  requests.addIndex(REQUESTS_BY_RANGE, requestRangeIndex);
  allocations.addIndex(ALLOCATIONS_BY_REQUEST, allocationRequestIndex);

  const make = (name: string, workerCount: number, reconcile: (key: string) => Promise<void>) =>
    new Controller({ name, workers: workerCount, logger: mgr.logger, registry: mgr.registry, reconcile });
  // The reconcile closures run only after start, when `controller` below exists.
  const rangeController = make("ipamrange", side, (key) => controller.reconcileRange(key));
  const requestController = make("ipamrequest", workers, (key) => controller.reconcileRequest(key));
  const allocationController = make("ipamallocation", side, (key) => controller.reconcileAllocation(key));
  const queueOf = (c: Controller): Queue => ({
    add: (k) => c.enqueue(k),
    addAfter: (k, ms) => c.enqueueAfter(k, ms),
  });

  const recorder = options.events ? undefined : mgr.eventRecorder();
  const controller = new IpamController({
    ranges,
    requests,
    allocations,
    rangeQueue: queueOf(rangeController),
    requestQueue: queueOf(requestController),
    allocationQueue: queueOf(allocationController),
    writer: new KubeIpamWriter(mgr.client),
    events: options.events ?? {
      emit: (object, type, reason, note) => recorder?.event(object, type, reason, note),
    },
    metrics: new PrometheusIpamMetrics(mgr.registry),
    log: mgr.logger.withName("ipam"),
    rangeStatusDelayMs: options.rangeStatusDelayMs,
  });

  // Until the ledgers are rebuilt, events are ignored: bootstrap reads the caches as they are then.
  let active = false;
  ranges.addEventHandler({
    onAdd: (r) => {
      if (active) controller.onRangeChange(r);
    },
    onUpdate: (old, r) => {
      if (active) controller.onRangeChange(r, old);
    },
    onDelete: (r) => {
      if (active) controller.onRangeDelete(r);
    },
  });
  requests.addEventHandler({
    onAdd: (r) => {
      if (active) controller.onRequestChange(r);
    },
    onUpdate: (old, r) => {
      if (active) controller.onRequestChange(r, old);
    },
    onDelete: (r) => {
      if (active) controller.onRequestDelete(r);
    },
  });
  allocations.addEventHandler({
    onAdd: (a) => {
      if (active) controller.onAllocationUpsert(a);
    },
    onUpdate: (_old, a) => {
      if (active) controller.onAllocationUpsert(a);
    },
    onDelete: (a) => {
      if (active) controller.onAllocationDelete(a);
    },
  });

  let markBootstrapped: () => void = () => {};
  const bootstrapped = new Promise<void>((resolve) => {
    markBootstrapped = resolve;
  });
  mgr.add(
    {
      name: "ipam",
      needLeaderElection: true,
      start: async (signal) => {
        // The manager starts leader runnables only after every informer has synced.
        controller.bootstrap();
        active = true;
        mgr.logger.info("allocations rebuilt from the API server", {
          ranges: ranges.size,
          requests: requests.size,
          allocations: allocations.size,
        });
        markBootstrapped();
        await Promise.all([
          rangeController.start(signal),
          requestController.start(signal),
          allocationController.start(signal),
        ]);
      },
    },
    true,
  );
  // A standby replica is ready once its caches are; the leader once its ledgers are rebuilt.
  mgr.addReadyzCheck("ipam", () => (active || !mgr.isLeader() ? true : "allocations not rebuilt yet"));
  return { controller, bootstrapped };
}
