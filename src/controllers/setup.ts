// Registers the IPAM reconcilers with the runtime's Manager: informers with compact caches (ranges of
// both kinds, namespaces, requests, records; Cluster API's informers are claim-setup.ts's), and per
// term of the allocation fence four work queues and a fresh IpamController. Start-up order makes a
// restart and a hand-over safe: ranges synced → fence acquired → requests and allocation objects
// listed side by side (the records' list is their informer's first list, or a relist in later terms:
// either way a read that began after the fence was acquired, so every record committed under earlier
// holders is in the cache) → ledgers and allocators rebuilt → workers started. Runs only while
// leading (with leader election) and only while holding the fence.

import { setMaxListeners } from "node:events";
import {
  API_VERSION,
  type ClusterIPAMRange,
  clusterIpamRangeResource,
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRequest,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
  type ObjectMeta,
} from "../api/types.ts";
import { Controller, type Reconciler } from "../runtime/controller.ts";
import { DeferredInformer } from "../runtime/deferred-informer.ts";
import { Informer } from "../runtime/informer.ts";
import { CoreTypes, type KubeObject, type ResourceType } from "../runtime/kube.ts";
import { LeaderElector } from "../runtime/leader-election.ts";
import type { Manager } from "../runtime/manager.ts";
import { allocationCacheTransform, cacheTables, cacheTransform, requestCacheTransform } from "./cache.ts";
import { addClaimInformers } from "./claim-setup.ts";
import {
  ALLOCATIONS_BY_REQUEST,
  allocationRequestIndex,
  REQUESTS_BY_CLUSTER_NAMESPACE,
  REQUESTS_BY_RANGE,
  requestClusterNamespaceIndex,
  requestRangeIndex,
} from "./indexes.ts";
import { IpamController } from "./ipam-controller.ts";
import { PrometheusIpamMetrics } from "./metrics.ts";
import type { EventSink, Queue } from "./ports.ts";
import { KubeIpamWriter } from "./writer.ts";

/**
 * The allocation fence: a Lease that every kubipam writer of a cluster must share (same namespace and
 * name). Only its holder allocates, and it confirms the lease with a compare-and-swap before it
 * publishes anything (see docs/internals.md, "Never twice").
 */
export interface FenceOptions {
  namespace: string;
  name: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export const DEFAULT_FENCE_NAME = "kubipam-allocation-fence";
export interface IpamControllerOptions {
  /** Concurrent request reconciles (ranges and garbage collection get a quarter, at least one). */
  workers?: number;
  /** Delay before a range's usage status is written after allocations change (default 1 s). */
  rangeStatusDelayMs?: number;
  /** Where events go (default: the manager's events.k8s.io recorder). */
  events?: EventSink;
  /** Normal `Allocated` events, one per allocation, at low priority (default true). */
  allocationEvents?: boolean;
  /** Default: Lease kubipam-allocation-fence in kube-system. */
  fence?: FenceOptions;
  /** How often discovery is asked whether Cluster API's resources are served (default 2000 ms). */
  clusterApiPollMs?: number;
  /**
   * Where the IPAMAllocation records of ClusterIPAMRanges live; like the fence, the same for every
   * kubipam controller of a cluster (default: the fence's namespace, kube-system).
   */
  clusterAllocationNamespace?: string;
}

export interface IpamControllers {
  /** The controller of the current fence term (undefined while this process does not hold it). */
  readonly controller: IpamController | undefined;
  /** Resolves once this process first holds the fence and its ledgers are rebuilt. */
  readonly bootstrapped: Promise<void>;
  /** The caches the reconcilers read (requests and records start with the first fence term). */
  readonly informers: {
    ranges: Informer<IPAMRange>;
    requests: Informer<IPAMRequest>;
    allocations: Informer<IPAMAllocation>;
  };
}

export function addIpamControllers(mgr: Manager, options: IpamControllerOptions = {}): IpamControllers {
  const workers = Math.max(1, options.workers ?? 8);
  const side = Math.max(1, Math.ceil(workers / 4));
  const fenceOptions = options.fence ?? { namespace: "kube-system", name: DEFAULT_FENCE_NAME };
  const tables = cacheTables();
  const ranges = mgr.informer<IPAMRange>(ipamRangeResource, { transform: cacheTransform(tables) });
  const clusterRangeTransform = cacheTransform<ClusterIPAMRange>(tables);
  // Deferred: a `helm upgrade` that did not apply the CRDs leaves this kind unserved, and IPAMRanges
  // must be served all the same (requests naming a ClusterIPAMRange are told why they wait).
  const clusterRanges = new DeferredInformer<ClusterIPAMRange>(mgr.client, clusterIpamRangeResource, {
    logger: mgr.logger,
    registry: mgr.registry,
    pollIntervalMs: options.clusterApiPollMs,
    // List items may come without kind; the kind is what tells the two range kinds apart.
    transform: (r) => ({ ...clusterRangeTransform(r), apiVersion: API_VERSION, kind: "ClusterIPAMRange" }),
  });
  mgr.add({ name: clusterRanges.name, start: (signal) => clusterRanges.start(signal) }, false);
  // Only the labels matter (a ClusterIPAMRange's namespaceSelector): keep nothing else in memory.
  const namespaces = mgr.informer<{ apiVersion: string; kind: string; metadata: ObjectMeta }>(
    CoreTypes.namespace,
    { transform: (n) => ({ apiVersion: "v1", kind: "Namespace", metadata: namespaceMeta(n.metadata) }) },
  );
  // Requests and records are not the manager's informers: they start in the first fence term
  // (serveTerm), so their first lists run side by side once the fence is held, and the records' list
  // is the term's consistent read (no second list). A standby replica caches neither.
  const termInformer = <T extends KubeObject>(type: ResourceType, transform: (obj: T) => T) =>
    new Informer<T>(mgr.client, type, { logger: mgr.logger, registry: mgr.registry, transform });
  const requests = termInformer(ipamRequestResource, requestCacheTransform(tables));
  const allocations = termInformer(ipamAllocationResource, allocationCacheTransform(tables));
  requests.addIndex(REQUESTS_BY_RANGE, requestRangeIndex);
  requests.addIndex(REQUESTS_BY_CLUSTER_NAMESPACE, requestClusterNamespaceIndex);
  allocations.addIndex(ALLOCATIONS_BY_REQUEST, allocationRequestIndex);
  const recorder = options.events ? undefined : mgr.eventRecorder();
  const metrics = new PrometheusIpamMetrics(mgr.registry);
  const log = mgr.logger.withName("ipam");

  /** The controller of the current term; informer events reach it only once it is rebuilt. */
  let current: IpamController | undefined;
  let campaign: LeaderElector | undefined;
  let clusterRangesReported = false;
  /** Waits for the first look at ClusterIPAMRanges; a kind that cannot be read is reported once. */
  const settleClusterRanges = async (held: AbortSignal) => {
    await clusterRanges.settled(held);
    const problem = clusterRangesProblem(clusterRanges);
    if (problem && !clusterRangesReported) {
      clusterRangesReported = true;
      log.error(`ClusterIPAMRanges cannot be read: ${problem}; IPAMRanges are served meanwhile`);
    }
  };
  const claimInformers = addClaimInformers(mgr, () => current, options.clusterApiPollMs);

  /** One term of the fence: fresh queues and state, rebuilt from the API server. */
  const serveTerm = async (fence: LeaderElector, held: AbortSignal, stopped: AbortSignal): Promise<void> => {
    // Every worker of the term's four controllers waits on this signal (by design, like the manager's).
    setMaxListeners(0, held);
    const make = (name: string, workerCount: number, reconcile: Reconciler) =>
      new Controller({ name, workers: workerCount, logger: mgr.logger, registry: mgr.registry, reconcile });
    const rangeController = make("ipamrange", side, (key) => controller.reconcileRange(key));
    const requestController = make("ipamrequest", workers, (key) => controller.reconcileRequest(key));
    const allocationController = make("ipamallocation", side, (key) => controller.reconcileAllocation(key));
    const claimController = make("ipaddressclaim", side, (key) => controller.reconcileClaim(key));
    const queueOf = (c: Controller): Queue => ({
      add: (k) => c.enqueue(k),
      addAfter: (k, ms) => c.enqueueAfter(k, ms),
    });
    const controller = new IpamController({
      ranges,
      clusterRanges,
      clusterRangesUnavailable: () => clusterRangesProblem(clusterRanges),
      namespaces,
      clusterAllocationNamespace: options.clusterAllocationNamespace ?? fenceOptions.namespace,
      requests,
      allocations,
      rangeQueue: queueOf(rangeController),
      requestQueue: queueOf(requestController),
      allocationQueue: queueOf(allocationController),
      writer: new KubeIpamWriter(mgr.client),
      fence,
      events: options.events ?? {
        emit: (object, type, reason, note, priority) =>
          recorder?.event(object, type, reason, note, priority ? { priority } : {}),
      },
      allocationEvents: options.allocationEvents,
      metrics,
      log,
      rangeStatusDelayMs: options.rangeStatusDelayMs,
      claims: claimInformers.deps(queueOf(claimController)),
    });
    // Records committed by an earlier holder were created before its last confirm, hence before this
    // term began: a list that starts now brings every one of them into the cache. The first term's is
    // the informer's first list (started only now); a later term's is a relist.
    // The claims' caches (when Cluster API is installed) and the cluster ranges' settle side by side
    // with the lists: bootstrap judges claims' records too, so all must be in before it runs.
    const firstList = (informer: Informer<IPAMRequest> | Informer<IPAMAllocation>) => {
      void informer.start(stopped);
      return informer.waitForSync(held);
    };
    const listed = await Promise.all([
      allocations.hasStarted() ? allocations.relist().then(() => true) : firstList(allocations),
      // A term that ended during the first list leaves it running: the next one waits for it.
      requests.hasStarted() ? requests.waitForSync(held) : firstList(requests),
      claimInformers.settled(held).then(() => true),
      settleClusterRanges(held).then(() => true),
    ]);
    if (listed.includes(false)) return;
    // Still the holder after the list (a pause here would leave this term serving from an old list
    // until its next renewal): confirm once more before anything is rebuilt or decided.
    if (held.aborted || !(await fence.confirm())) return;
    controller.bootstrap();
    current = controller;
    mgr.logger.info("allocations rebuilt from the API server", {
      ranges: ranges.size,
      requests: requests.size,
      allocations: allocations.size,
    });
    markBootstrapped();
    try {
      await Promise.all([
        rangeController.start(held),
        requestController.start(held),
        allocationController.start(held),
        claimController.start(held),
      ]);
    } finally {
      // A later term may have started already: only this term's controller is disconnected.
      if (current === controller) current = undefined;
    }
  };

  ranges.addEventHandler({
    onAdd: (r) => current?.onRangeChange(r),
    onUpdate: (old, r) => current?.onRangeChange(r, old),
    onDelete: (r) => current?.onRangeDelete(r),
  });
  clusterRanges.addEventHandler({
    onAdd: (r) => current?.onRangeChange(r),
    onUpdate: (old, r) => current?.onRangeChange(r, old),
    onDelete: (r) => current?.onRangeDelete(r),
  });
  namespaces.addEventHandler({
    onUpdate: (old, n) => current?.onNamespaceChange(n, old),
    onAdd: (n) => current?.onNamespaceChange(n),
  });
  requests.addEventHandler({
    onAdd: (r) => current?.onRequestChange(r),
    onUpdate: (old, r) => current?.onRequestChange(r, old),
    onDelete: (r) => current?.onRequestDelete(r),
  });
  allocations.addEventHandler({
    onAdd: (a) => current?.onAllocationUpsert(a),
    onUpdate: (_old, a) => current?.onAllocationUpsert(a),
    onDelete: (a) => current?.onAllocationDelete(a),
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
        // The manager starts leader runnables only after every informer has synced. A lost fence
        // ends the term; this process then campaigns again and rebuilds before serving.
        while (!signal.aborted) {
          // Ends this campaign when the term's work ends by itself (an error): the fence is released
          // rather than held by a process that serves nothing.
          const campaignEnd = new AbortController();
          const onStop = () => campaignEnd.abort();
          signal.addEventListener("abort", onStop, { once: true });
          let term: Promise<void> | undefined;
          const fence: LeaderElector = new LeaderElector(mgr.client, {
            ...fenceOptions,
            identity: mgr.identity,
            releaseOnCancel: true,
            logger: mgr.logger.withName("fence"),
            registry: mgr.registry,
            onStartedLeading: (held) => {
              term = serveTerm(fence, held, signal)
                .catch((err: unknown) => log.error("allocation term failed", { error: err }))
                .finally(() => {
                  if (!held.aborted) campaignEnd.abort();
                });
              return term;
            },
          });
          campaign = fence;
          const outcome = await fence.run(campaignEnd.signal);
          signal.removeEventListener("abort", onStop);
          // The old term's in-flight reconciles finish before a new term rebuilds.
          await term;
          if (outcome === "lost") log.error("allocation fence lost; rebuilding before serving again");
        }
      },
    },
    true,
  );
  // A standby replica (not leading, or another process holds the fence) is ready once its caches are;
  // the fence holder once its ledgers are rebuilt.
  mgr.addReadyzCheck("ipam", () => {
    const holder = campaign?.getLeader() ?? "";
    const standby = !mgr.isLeader() || (holder !== "" && holder !== mgr.identity);
    return current || standby ? true : "allocations not rebuilt yet";
  });
  return {
    get controller() {
      return current;
    },
    bootstrapped,
    informers: { ranges, requests, allocations },
  };
}

/** What consent needs of a namespace: its name and labels (plus what the informer keys on). */
function namespaceMeta(meta: ObjectMeta): ObjectMeta {
  return { name: meta.name, uid: meta.uid, resourceVersion: meta.resourceVersion, labels: meta.labels };
}

/** Why the ClusterIPAMRange cache is not to be trusted now, or undefined once it is complete. */
function clusterRangesProblem(informer: DeferredInformer<ClusterIPAMRange>): string | undefined {
  switch (informer.state) {
    case "synced":
      return undefined;
    case "absent":
      return "the ClusterIPAMRange CRD is not installed: apply the CRDs (deploy/crds.yaml, or the chart's crds/)";
    case "forbidden":
      return `listing ${informer.resourceName} is forbidden: grant kubipam list and watch on it (RBAC)`;
    default:
      return "the ClusterIPAMRange cache is not complete yet";
  }
}
