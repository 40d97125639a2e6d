// The IPAM controller of one fence term: the ledger (the one owner of allocation state), the status
// writer, and the reconcilers, wired over the ports. Safety rests on the API server, not on memory
// (see docs/internals.md, "Never twice"): a record per block created before its publish, the
// allocation fence confirmed before anything is published, publishes conditional on the request's
// version, and a CEL rule that keeps status.cidr from ever changing.

import type { Cluster, IPAddress, IPAddressClaim } from "../api/cluster-api.ts";
import { DEFAULT_CLUSTER_ALLOCATION_NAMESPACE } from "../api/pool-ref.ts";
import type { IPAMAllocation, IPAMRequest, ObjectMeta, RangeObject } from "../api/types.ts";
import type { ReconcileResult } from "../runtime/controller.ts";
import { objectKey } from "../runtime/kube.ts";
import { Adoption } from "./adoption.ts";
import { AllocationCollector } from "./allocation-gc.ts";
import { ClaimProvider } from "./claim-handlers.ts";
import type { Context, IpamControllerDeps } from "./context.ts";
import { Handlers } from "./handlers.ts";
import { type HolderRegistry, noClaimHolders, RequestHolders } from "./holders.ts";
import { REQUESTS_BY_RANGE } from "./indexes.ts";
import { Ledger } from "./ledger.ts";
import type { PoolState } from "./pool-state.ts";
import { Publisher } from "./publisher.ts";
import { RangeReconciler } from "./range-reconciler.ts";
import { Records } from "./records.ts";
import { RequestReconciler } from "./request-reconciler.ts";
import { StatusWriter } from "./status.ts";

export type { IpamControllerDeps } from "./context.ts";

export class IpamController {
  private readonly ledger: Ledger;
  private readonly handlers: Handlers;
  private readonly ranges: RangeReconciler;
  private readonly requests: RequestReconciler;
  private readonly collector: AllocationCollector;
  private readonly publisher: Publisher;
  /** The Cluster API provider (when claims are wired). */
  private readonly claims: ClaimProvider | undefined;

  constructor(d: IpamControllerDeps) {
    const now = d.now ?? (() => new Date());
    const statusDelay = d.rangeStatusDelayMs ?? 1000;
    const wake = (state: PoolState, all: boolean) => {
      for (const key of state.busy) d.requestQueue.add(key);
      state.busy.clear();
      this.claims?.wake(state, all);
      if (!all) return;
      for (const request of d.requests.byIndex(REQUESTS_BY_RANGE, state.key)) {
        if (!request.status?.cidr) d.requestQueue.add(objectKey(request));
      }
    };
    this.ledger = new Ledger(
      {
        wake,
        touch: (state) => d.rangeQueue.addAfter(state.key, statusDelay),
        released: (state) => d.metrics.released(state.ref),
        conflict: (state, block) => {
          d.log.error("IPAMAllocation overlaps another allocation", {
            range: state.key,
            cidr: `${block.cidr}`,
          });
          d.metrics.failed(state.ref, "conflict");
          d.allocationQueue.add(state.recordKey(block.objectName));
        },
      },
      d.clusterAllocationNamespace ?? DEFAULT_CLUSTER_ALLOCATION_NAMESPACE,
      () => now().getTime(),
    );
    const status = new StatusWriter({
      writer: d.writer,
      events: d.events,
      metrics: d.metrics,
      log: d.log,
      now,
    });
    const holders: HolderRegistry = (kind) =>
      kind === "IPAddressClaim" ? (this.claims?.holders ?? noClaimHolders) : requestHolders;
    const c: Context = { d, ledger: this.ledger, status, now, holders };
    const records = new Records(c);
    const requestHolders = new RequestHolders(c, records);
    this.claims = d.claims ? new ClaimProvider(c, d.claims, records) : undefined;
    this.ranges = new RangeReconciler(c, wake);
    let requests: RequestReconciler | undefined;
    const dropExtras = (request: IPAMRequest, cidr: string) => requests?.dropExtras(request, cidr);
    const adoption = new Adoption(c, records, dropExtras);
    this.publisher = new Publisher(c, records, dropExtras);
    requests = new RequestReconciler(c, records, adoption, this.publisher);
    this.requests = requests;
    this.collector = new AllocationCollector(c, records);
    this.handlers = new Handlers(c, this.ranges, adoption);
  }

  /** Rebuilds the ledger from the caches and queues everything once (before any worker runs). */
  bootstrap(): void {
    this.handlers.bootstrap();
    this.claims?.bootstrap();
  }

  onRangeChange(range: RangeObject, old?: RangeObject): void {
    this.handlers.onRangeChange(range, old);
    this.claims?.onPool(range, old);
  }

  onClaimChange(claim: IPAddressClaim, old?: IPAddressClaim): void {
    this.claims?.onClaimChange(claim, old);
  }

  onClaimDelete(claim: IPAddressClaim): void {
    this.claims?.onClaimDelete(claim);
  }

  /** An IPAddress was added, changed or deleted. */
  onAddress(address: IPAddress): void {
    this.claims?.onAddress(address);
  }

  onCluster(cluster: Cluster, old?: Cluster): void {
    this.claims?.onCluster(cluster, old);
  }

  /**
   * Cluster API's resources became served (or a cache of them synced): as at bootstrap, addresses
   * claims published without a record are reserved first (the claims' cache may have been empty then:
   * discovery failed), and every claim looks once.
   */
  onClaimsServed(): void {
    this.claims?.bootstrap();
  }

  reconcileClaim(key: string): Promise<ReconcileResult | undefined> {
    return this.claims ? this.claims.reconcile(key) : Promise.resolve(undefined);
  }

  onRangeDelete(range: RangeObject): void {
    this.handlers.onRangeDelete(range);
  }

  onNamespaceChange(namespace: { metadata: ObjectMeta }, old?: { metadata: ObjectMeta }): void {
    this.handlers.onNamespaceChange(namespace, old);
    this.claims?.onNamespace(namespace, old);
  }

  onRequestChange(request: IPAMRequest, old?: IPAMRequest): void {
    this.handlers.onRequestChange(request, old);
  }

  onRequestDelete(request: IPAMRequest): void {
    this.handlers.onRequestDelete(request);
  }

  onAllocationUpsert(allocation: IPAMAllocation): void {
    this.handlers.onAllocationUpsert(allocation);
  }

  onAllocationDelete(allocation: IPAMAllocation): void {
    this.handlers.onAllocationDelete(allocation);
  }

  reconcileRange(key: string): Promise<void> {
    return this.ranges.reconcile(key);
  }

  reconcileRequest(key: string): Promise<ReconcileResult | undefined> {
    return this.requests.reconcile(key);
  }

  reconcileAllocation(key: string): Promise<void> {
    return this.collector.reconcile(key);
  }

  /** Resolves once every handed-over publication is written (or given up). */
  published(): Promise<void> {
    return this.publisher.idle();
  }

  /** Figures for the views and tests. */
  snapshot(): { range: string; held: string[]; busy: string[] }[] {
    return this.ledger.snapshot();
  }
}
