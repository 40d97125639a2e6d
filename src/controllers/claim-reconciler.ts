// The Cluster API claim reconciler (docs/semantics.md §8): claims whose poolRef names a kubipam pool
// get one single address of it, guarded exactly as requests' blocks are (docs/internals.md, "Never
// twice"): ReleaseAddress finalizer → block from the allocator → record created → allocation fence
// confirmed → the publication, kubipam's Address condition on the claim, written conditional on the
// claim's version read before that confirm → then the IPAddress and Ready (claim-keeper.ts). Other
// providers' claims are never touched. Watches: IPAddressClaim (kubipam's), their IPAddress, their
// Cluster (paused), their pool (spec, paused annotation); queued also when space in the pool is freed.

import {
  CLUSTER_NAME_LABEL,
  ClaimReadyReason,
  clusterNameOf,
  hasPausedAnnotation,
  type IPAddressClaim,
  isClusterPaused,
  RELEASE_ADDRESS_FINALIZER,
} from "../api/cluster-api.ts";
import { describePool, type PoolRef, poolKey } from "../api/pool-ref.ts";
import { FINALIZER, type RangeObject } from "../api/types.ts";
import { claimPrefix } from "../api/validation.ts";
import { type Allocator, type Cidr, IpamError } from "../ipam/index.ts";
import type { ReconcileResult } from "../runtime/controller.ts";
import { hasFinalizer } from "../runtime/finalizers.ts";
import { objectKey } from "../runtime/kube.ts";
import { excludedEntry } from "./adoption.ts";
import type { ClaimKeeper } from "./claim-keeper.ts";
import { claimPoolOf } from "./claim-pool.ts";
import type { ClaimDeps } from "./claim-ports.ts";
import type { ClaimHolders, ClaimReadiness, ClaimStatus } from "./claim-status.ts";
import { admits, notAdmittedMessage } from "./consent.ts";
import { type Context, FENCE_RETRY_MS, missingRangeMessage, rangeObject } from "./context.ts";
import type { HeldBlock, PoolState } from "./pool-state.ts";
import { statusOf } from "./ports.ts";
import type { Records } from "./records.ts";
import { errorMessage } from "./status.ts";

const MAX_COLLISIONS = 64;
const CONTESTED_MS = 250;
const AGAIN_MS = 50;

type Step = ReconcileResult | undefined;
const notReady = (reason: ClaimReadiness["reason"], message: string): ClaimReadiness => ({
  ready: false,
  reason,
  message,
});

/** How often a claim naming a Cluster looks again while the Clusters are not known yet. */
const CLUSTERS_PENDING_RETRY_MS = 5_000;

export class ClaimReconciler {
  /** Claims waiting for space, by pool key; woken when space is freed or the pool changes. */
  readonly busy = new Map<string, Set<string>>();

  constructor(
    private readonly c: Context,
    private readonly p: ClaimDeps,
    private readonly records: Records,
    private readonly status: ClaimStatus,
    private readonly holders: ClaimHolders,
    private readonly keeper: ClaimKeeper,
  ) {}

  async reconcile(key: string): Promise<Step> {
    const claim = this.p.claims.get(key);
    if (!claim) return this.keeper.orphan(key);
    const pool = claimPoolOf(claim);
    if (!pool) return undefined;
    this.busy.get(poolKey(pool))?.delete(key);
    const gate = this.gate(claim, pool);
    if (gate === "paused") return undefined;
    // Clusters not known yet: once their cache is complete every claim is queued again.
    if (gate === "unknown") return { requeueAfter: CLUSTERS_PENDING_RETRY_MS };
    if (typeof gate === "object") return this.clustersUnreadable(claim, gate.unreadable);
    try {
      if (claim.metadata.deletionTimestamp) return await this.keeper.release(claim, pool);
      // A claim that has its address keeps it (and its IPAddress) when its Cluster goes: it is
      // released when the claim is deleted, not flagged.
      const published = this.keeper.publishedCidr(claim);
      if (published) return await this.keeper.keep(claim, pool, published);
      if (gate !== "serve") return await this.say(claim, notReady(ClaimReadyReason.AllocationFailed, gate));
      return await this.allocate(claim, pool);
    } catch (err) {
      if (statusOf(err) === 409) return { requeueAfter: AGAIN_MS };
      throw err;
    }
  }

  /**
   * `serve`; `paused` (pool or Cluster); `unknown` (Clusters not known yet); or, for a claim whose
   * Cluster is missing, why it is not served (its deletion still is).
   */
  private gate(
    claim: IPAddressClaim,
    pool: PoolRef,
  ): "serve" | "paused" | "unknown" | { unreadable: string } | string {
    const range = this.poolObject(pool);
    if (range && hasPausedAnnotation(range)) return "paused";
    const clusterName = clusterNameOf(claim);
    if (!clusterName) return "serve";
    const clusters = this.p.clustersState();
    if (clusters === "pending") return "unknown";
    if (clusters === "forbidden") {
      return {
        unreadable: `cannot read Cluster ${claim.metadata.namespace}/${clusterName}: kubipam may not list clusters.cluster.x-k8s.io (grant get, list and watch on it; RBAC)`,
      };
    }
    const cluster =
      clusters === "synced" ? this.p.clusters.get(`${claim.metadata.namespace}/${clusterName}`) : undefined;
    if (!cluster) {
      const why = clusters === "absent" ? " (Cluster API's Cluster resource is not installed)" : "";
      return `Cluster ${claim.metadata.namespace}/${clusterName} not found${why}: create it, or correct spec.clusterName or the ${CLUSTER_NAME_LABEL} label`;
    }
    return isClusterPaused(cluster) ? "paused" : "serve";
  }

  /**
   * The claim's Cluster cannot be read, so whether it is paused is unknown: nothing is done, and a
   * claim not yet served says why. Once the Clusters' cache is complete every claim is queued again.
   */
  private async clustersUnreadable(claim: IPAddressClaim, message: string): Promise<Step> {
    if (claim.metadata.deletionTimestamp || this.keeper.publishedCidr(claim)) return undefined;
    return this.say(claim, notReady(ClaimReadyReason.AllocationFailed, message));
  }

  private poolObject(pool: PoolRef): RangeObject | undefined {
    return rangeObject(this.c.d, pool);
  }

  private async say(claim: IPAddressClaim, r: ClaimReadiness): Promise<Step> {
    await this.status.ready(claim, r);
    return undefined;
  }

  /** Why the pool cannot serve the claim now (reason PoolNotReady), or its state and spec. */
  private usablePool(
    claim: IPAddressClaim,
    pool: PoolRef,
  ): { state: PoolState; range: RangeObject } | string {
    const what = describePool(pool);
    const range = this.poolObject(pool);
    if (!range) {
      const missing = missingRangeMessage(this.c.d, pool);
      return missing.endsWith("not found")
        ? `${missing}: create it, or correct the claim's spec.poolRef`
        : missing;
    }
    const namespace = claim.metadata.namespace ?? "";
    if (!admits(this.c.d, pool, range, namespace)) {
      return notAdmittedMessage(pool, namespace).replace("admit requests", "admit claims");
    }
    const state = this.c.ledger.state(pool);
    if (!state.spec) return `${what} not valid: ${state.invalidMessage}`;
    if (range.metadata.deletionTimestamp) return `${what} is being deleted`;
    const prefix = claimPrefix(state.spec);
    if (!prefix.ok) return `${what}: ${prefix.message}`;
    return { state, range };
  }

  private async allocate(claim: IPAddressClaim, pool: PoolRef): Promise<Step> {
    const usable = this.usablePool(claim, pool);
    if (typeof usable === "string") return this.say(claim, notReady(ClaimReadyReason.PoolNotReady, usable));
    const { state, range } = usable;
    const allocator = this.c.ledger.allocator(state);
    // Cooldowns that are due end now (as for requests; this also wakes the pool's other waiters).
    this.c.ledger.expireCooling(state);
    if (state.spec?.family === undefined || !allocator) {
      this.wait(pool, claim);
      return this.say(
        claim,
        notReady(
          ClaimReadyReason.PoolExhausted,
          `${describePool(pool)} is empty: add addresses to its spec.ranges`,
        ),
      );
    }
    // Protected before anything is published: the claim (its address is released on deletion) and
    // the range (its deletion waits).
    const current = hasFinalizer(claim, RELEASE_ADDRESS_FINALIZER)
      ? claim
      : await this.p.writer.setClaimFinalizer(claim, true);
    if (!current) return undefined;
    if (!hasFinalizer(range, FINALIZER)) await this.c.d.writer.setRangeFinalizer(range, true);
    // The publication is conditional on this version, read before the fence is confirmed.
    const version = current.metadata.resourceVersion;
    const uid = claim.metadata.uid ?? "";
    const existing = this.c.ledger.blocksOf(uid).find((b) => this.c.ledger.stateForBlock(b) === state);
    if (existing && !fitsClaim(existing.cidr, allocator)) {
      await this.holders
        .cached(objectKey(claim), uid)
        ?.revoke(state, existing, `${existing.cidr} is not an address of ${describePool(pool)}`);
      return { requeueAfter: AGAIN_MS };
    }
    const claimed = existing ?? (await this.claim(current, pool, state, range, allocator));
    if (!("requestUid" in claimed)) return claimed.step;
    return this.publish(current, pool, state, claimed, version);
  }

  private wait(pool: PoolRef, claim: IPAddressClaim): void {
    let set = this.busy.get(poolKey(pool));
    if (!set) {
      set = new Set();
      this.busy.set(poolKey(pool), set);
    }
    set.add(objectKey(claim));
  }

  /** Takes a free address and creates its record; or says why not. */
  private async claim(
    claim: IPAddressClaim,
    pool: PoolRef,
    state: PoolState,
    range: RangeObject,
    allocator: Allocator,
  ): Promise<HeldBlock | { step: Step }> {
    const key = objectKey(claim);
    const holder = { uid: claim.metadata.uid ?? "", key, kind: "IPAddressClaim" as const };
    for (let attempt = 0; attempt < MAX_COLLISIONS; attempt++) {
      let cidr: ReturnType<Allocator["allocate"]>;
      try {
        cidr = allocator.allocate(state.spec?.family === 6 ? 128 : 32);
      } catch (err) {
        const busy = err instanceof IpamError && err.code === "Busy";
        this.c.d.metrics.failed(state.ref, busy ? "busy" : "invalid");
        if (!busy)
          return {
            step: await this.say(claim, notReady(ClaimReadyReason.AllocationFailed, errorMessage(err))),
          };
        this.wait(pool, claim);
        const message = `no free address in ${describePool(pool)}: the claim is served as soon as one is released or the pool grows`;
        await this.say(claim, notReady(ClaimReadyReason.PoolExhausted, `${message}${coolingNote(err)}`));
        // Busy only because of cooling space: look again when it ends.
        return { step: coolingRetry(err, this.c.now().getTime()) };
      }
      const block = await this.records.claim(range, state, holder, cidr);
      if (block) return block;
    }
    this.c.d.log.info("addresses taken by other writers; retrying", { pool: state.key, claim: key });
    return { step: { requeueAfter: 100 } };
  }

  /** Confirms the fence (after the record exists), then publishes conditional on `version`. */
  private async publish(
    claim: IPAddressClaim,
    pool: PoolRef,
    state: PoolState,
    block: HeldBlock,
    version: string | undefined,
  ): Promise<Step> {
    if (block.phase === "claiming" && !(await this.confirmRecord(claim, state, block))) {
      return { requeueAfter: AGAIN_MS };
    }
    if (state.isContested(block.cidr)) return { requeueAfter: CONTESTED_MS };
    if (!(await this.c.d.fence.confirm())) return { requeueAfter: FENCE_RETRY_MS };
    let published: IPAddressClaim;
    try {
      published = await this.status.publish(claim, block.cidr.toString(), version);
    } catch (err) {
      // Gone: the block goes back. Changed since read (or revoked): decide again on a fresh view.
      if (statusOf(err) === 404) await this.records.giveBack(state, block);
      if (statusOf(err) === 404 || statusOf(err) === 409) return { requeueAfter: AGAIN_MS };
      throw err;
    }
    this.c.d.metrics.allocated(state.ref, undefined);
    return this.keeper.keep(published, pool, block.cidr.toString());
  }

  /** A claim left over from an attempt with an unknown outcome: is its record there, and ours? */
  private async confirmRecord(claim: IPAddressClaim, state: PoolState, block: HeldBlock): Promise<boolean> {
    const existing = await this.c.d.writer.getAllocation(state.recordNamespace, block.objectName);
    if (existing && existing.spec.request.uid !== block.requestUid) {
      this.records.foreign(state, block, existing);
      return false;
    }
    if (!existing) {
      const holder = this.holders.cached(objectKey(claim), block.requestUid);
      if (holder) await holder.revoke(state, block, `the record of ${block.cidr} is gone`);
      else this.c.ledger.undoClaim(state, block);
      return false;
    }
    block.phase = "held";
    block.objectUid = existing.metadata.uid;
    return true;
  }
}

/** Whether a block recorded for a claim (not published yet) is what a claim gets: one free-able address of the pool. */
function fitsClaim(cidr: Cidr, allocator: Allocator): boolean {
  return (
    cidr.prefix === cidr.width && allocator.contains(cidr) && excludedEntry(allocator, cidr) === undefined
  );
}

/** How a PoolExhausted message says that space is only cooling down (§7 reuseCooldownSeconds). */
function coolingNote(err: unknown): string {
  const until = err instanceof IpamError ? err.coolingUntil : undefined;
  return until === undefined ? "" : ` (space is cooling down until ${new Date(until).toISOString()})`;
}

/** A retry at the end of the cooldown that alone keeps the claim waiting, if that is why. */
function coolingRetry(err: unknown, now: number): ReconcileResult | undefined {
  const until = err instanceof IpamError ? err.coolingUntil : undefined;
  return until === undefined ? undefined : { requeueAfter: Math.max(until - now, 0) + 1 };
}
