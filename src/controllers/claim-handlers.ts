// The Cluster API provider within one fence term: its reconciler, and informer events → queued claim
// keys (handlers never write and never decide). Only claims naming a kubipam pool are ever queued, so
// other providers' claims are not touched.

import {
  type Cluster,
  clusterNameOf,
  hasPausedAnnotation,
  type IPAddress,
  type IPAddressClaim,
  isClusterPaused,
  publishedAddressOf,
} from "../api/cluster-api.ts";
import { CLUSTER_RANGE_KIND, poolKey, poolOfObject } from "../api/pool-ref.ts";
import type { RangeObject } from "../api/types.ts";
import { recordName } from "../api/validation.ts";
import type { ReconcileResult } from "../runtime/controller.ts";
import { type ObjectMeta, objectKey } from "../runtime/kube.ts";
import { isKubipamAddress } from "./claim-addresses.ts";
import { ClaimKeeper } from "./claim-keeper.ts";
import { claimPoolOf } from "./claim-pool.ts";
import {
  CLAIMS_BY_CLUSTER,
  CLAIMS_BY_CLUSTER_NAMESPACE,
  CLAIMS_BY_POOL,
  type ClaimDeps,
} from "./claim-ports.ts";
import { ClaimReconciler } from "./claim-reconciler.ts";
import { ClaimHolders, ClaimStatus } from "./claim-status.ts";
import { admits, sameLabels } from "./consent.ts";
import { type Context, rangeObject } from "./context.ts";
import { ALLOCATIONS_BY_REQUEST } from "./indexes.ts";
import { type PoolState, parseHeldCidr } from "./pool-state.ts";
import type { Records } from "./records.ts";

/** Index function: claims by `namespace/name` of their Cluster. */
export function claimClusterIndex(claim: IPAddressClaim): string[] {
  const name = clusterNameOf(claim);
  return name && claimPoolOf(claim) ? [`${claim.metadata.namespace}/${name}`] : [];
}

export class ClaimProvider {
  readonly holders: ClaimHolders;
  private readonly reconciler: ClaimReconciler;

  constructor(
    private readonly c: Context,
    private readonly p: ClaimDeps,
    records: Records,
  ) {
    const status = new ClaimStatus(c, p);
    this.holders = new ClaimHolders(c, p, records, status);
    const keeper = new ClaimKeeper(c, p, records, status);
    this.reconciler = new ClaimReconciler(c, p, records, status, this.holders, keeper);
  }

  reconcile(key: string): Promise<ReconcileResult | undefined> {
    return this.reconciler.reconcile(key);
  }

  /**
   * Bootstrap, after the requests': addresses claims published without a record (a record removed
   * by hand) are reserved before anything is handed out, if inside the pool and free; the claim's
   * reconcile then writes the record (or flags the claim). Then every claim is queued once. Also
   * whenever a Cluster API cache becomes complete later (idempotent: a reserved block is skipped).
   */
  bootstrap(): void {
    for (const claim of this.p.claims.list()) this.reservePublished(claim);
    this.queueAll();
    for (const address of this.p.addresses.list()) this.onAddress(address);
  }

  /** Every kubipam claim once. */
  private queueAll(): void {
    for (const claim of this.p.claims.list()) if (claimPoolOf(claim)) this.p.claimQueue.add(objectKey(claim));
  }

  private reservePublished(claim: IPAddressClaim): void {
    const pool = claimPoolOf(claim);
    const cidr = parseHeldCidr(publishedAddressOf(claim) ?? "");
    if (!pool || !cidr || claim.metadata.deletionTimestamp) return;
    const state = this.c.ledger.find(poolKey(pool));
    const allocator = state?.currentAllocator();
    const range = rangeObject(this.c.d, pool);
    if (!state || !allocator || !range || state.held(cidr) || !allocator.contains(cidr)) return;
    if (!admits(this.c.d, pool, range, claim.metadata.namespace ?? "")) return;
    try {
      allocator.reserve(cidr);
    } catch {
      return; // not free: the claim's reconcile flags it
    }
    const holder = { uid: claim.metadata.uid ?? "", key: objectKey(claim), kind: "IPAddressClaim" as const };
    this.c.ledger.claim(state, holder, cidr, recordName(state.ref, cidr.toString()));
  }

  /** Space freed in a pool (`all`: or the pool changed): its waiting (all: every) claims are queued. */
  wake(state: PoolState, all: boolean): void {
    const waiting = this.reconciler.busy.get(state.key);
    if (waiting) for (const key of waiting) this.p.claimQueue.add(key);
    this.reconciler.busy.delete(state.key);
    if (!all) return;
    for (const claim of this.p.claims.byIndex(CLAIMS_BY_POOL, state.key))
      this.p.claimQueue.add(objectKey(claim));
  }

  onClaimChange(claim: IPAddressClaim, old?: IPAddressClaim): void {
    if (!claimPoolOf(claim) && !(old && claimPoolOf(old))) return;
    if (old && !claimChanged(claim, old)) return;
    this.p.claimQueue.add(objectKey(claim));
  }

  /** Gone: its records are garbage now (collected), and claims without a record are released here. */
  onClaimDelete(claim: IPAddressClaim): void {
    const pool = claimPoolOf(claim);
    if (!pool) return;
    const { d, ledger } = this.c;
    this.reconciler.busy.get(poolKey(pool))?.delete(objectKey(claim));
    d.rangeQueue.add(poolKey(pool));
    // Gone without a release (its finalizer stripped by hand)? Its IPAddress would stay protected.
    this.p.claimQueue.add(objectKey(claim));
    const uid = claim.metadata.uid ?? "";
    ledger.releaseUnrecorded(uid);
    for (const a of d.allocations.byIndex(ALLOCATIONS_BY_REQUEST, uid)) d.allocationQueue.add(objectKey(a));
    for (const block of ledger.blocksOf(uid)) {
      const state = ledger.stateForBlock(block);
      if (state) d.allocationQueue.add(state.recordKey(block.objectName));
    }
  }

  /**
   * A change to (or the deletion of) an IPAddress: its claim, if kubipam's, looks again; one kubipam
   * made without a claim in the cache is looked at under the claim's key (an orphan goes).
   */
  onAddress(address: IPAddress): void {
    const key = objectKey(address);
    const claim = this.p.claims.get(key);
    if (claim ? claimPoolOf(claim) : isKubipamAddress(address)) this.p.claimQueue.add(key);
  }

  /** A Cluster appeared, went, or was paused or unpaused: its claims look again. */
  onCluster(cluster: Cluster, old?: Cluster): void {
    if (old && isClusterPaused(old) === isClusterPaused(cluster)) return;
    for (const claim of this.p.claims.byIndex(CLAIMS_BY_CLUSTER, objectKey(cluster))) {
      this.p.claimQueue.add(objectKey(claim));
    }
  }

  /** A namespace's labels changed: its claims on cluster ranges look again (consent may have changed). */
  onNamespace(namespace: { metadata: ObjectMeta }, old?: { metadata: ObjectMeta }): void {
    if (old && sameLabels(old.metadata.labels, namespace.metadata.labels)) return;
    const claims = this.p.claims.byIndex(CLAIMS_BY_CLUSTER_NAMESPACE, namespace.metadata.name ?? "");
    for (const claim of claims) this.p.claimQueue.add(objectKey(claim));
  }

  /** A pool's paused annotation or its claim-relevant spec changed: its claims look again. */
  onPool(range: RangeObject, old?: RangeObject): void {
    if (old && hasPausedAnnotation(old) === hasPausedAnnotation(range)) return;
    const key = poolKey(poolOfObject(range));
    for (const claim of this.p.claims.byIndex(CLAIMS_BY_POOL, key)) this.p.claimQueue.add(objectKey(claim));
  }
}

/** Whether a claim update may need a reconcile (kubipam's own status writes alone do not). */
function claimChanged(claim: IPAddressClaim, old: IPAddressClaim): boolean {
  return (
    old.metadata.generation !== claim.metadata.generation ||
    old.metadata.deletionTimestamp !== claim.metadata.deletionTimestamp ||
    clusterNameOf(old) !== clusterNameOf(claim) ||
    (old.metadata.finalizers ?? []).length !== (claim.metadata.finalizers ?? []).length ||
    publishedAddressOf(old) !== publishedAddressOf(claim) ||
    readyOf(old) !== readyOf(claim)
  );
}

function readyOf(claim: IPAddressClaim): string {
  const c = claim.status?.conditions?.find((x) => x.type === "Ready");
  return `${c?.status}/${c?.reason}/${c?.message}`;
}
