// What a claim's status says and how it is written: kubipam's Address condition (the publication),
// status.addressRef and the Ready condition with Cluster API's reasons. Every write is conditional on the
// resourceVersion of the view it was computed from, so no write can drop a publication it did not see.
// Also the claim as a holder of records (holders.ts): alive, published, revoked.

import {
  ADDRESS_CONDITION,
  ClaimReadyReason,
  type ClaimReadyReasonName,
  type IPAddressClaim,
  type IPAddressClaimStatus,
  publishedAddressOf,
  RELEASE_ADDRESS_FINALIZER,
} from "../api/cluster-api.ts";
import { conditionsEqual, setCondition } from "../runtime/conditions.ts";
import { hasFinalizer } from "../runtime/finalizers.ts";
import type { ClaimDeps } from "./claim-ports.ts";
import type { Context } from "./context.ts";
import type { HolderAccess, LiveHolder } from "./holders.ts";
import type { HeldBlock, PoolState } from "./pool-state.ts";
import type { Records } from "./records.ts";
import { revocationMessage } from "./revocation.ts";

const READY = "Ready";

export interface ClaimReadiness {
  ready: boolean;
  reason: ClaimReadyReasonName;
  message: string;
}

export class ClaimStatus {
  constructor(
    private readonly c: Context,
    private readonly p: ClaimDeps,
  ) {}

  /** The status with Ready set (and addressRef once Ready); undefined if the claim says that already. */
  withReady(claim: IPAddressClaim, r: ClaimReadiness): IPAddressClaimStatus | undefined {
    const before = claim.status?.conditions;
    const conditions = setCondition(
      before,
      {
        type: READY,
        status: r.ready ? "True" : "False",
        reason: r.reason,
        message: r.message,
        observedGeneration: claim.metadata.generation,
      },
      this.c.now(),
    );
    const addressRef = r.ready ? { name: claim.metadata.name ?? "" } : claim.status?.addressRef;
    const sameRef = (claim.status?.addressRef?.name ?? "") === (addressRef?.name ?? "");
    if (sameRef && conditionsEqual(before, conditions)) return undefined;
    return { ...claim.status, conditions, ...(addressRef?.name ? { addressRef } : {}) };
  }

  /** Writes Ready (conditional on the claim's version); a Warning event when it turns False anew. */
  async ready(claim: IPAddressClaim, r: ClaimReadiness): Promise<IPAddressClaim> {
    const status = this.withReady(claim, r);
    if (!status) return claim;
    const written = await this.p.writer.patchClaimStatus(claim, status, claim.metadata.resourceVersion);
    const was = claim.status?.conditions?.find((c) => c.type === READY);
    if (!r.ready && was?.reason !== r.reason) this.c.d.events.emit(claim, "Warning", r.reason, r.message);
    if (r.ready && was?.status !== "True") {
      this.c.d.events.emit(claim, "Normal", "Allocated", r.message, "low");
    }
    return written;
  }

  /**
   * The publication: kubipam's Address condition names the block, written only if the claim is still
   * at `version` (read before the allocation fence was confirmed). Returns the claim afterwards.
   */
  publish(claim: IPAddressClaim, cidr: string, version: string | undefined): Promise<IPAddressClaim> {
    const conditions = setCondition(
      claim.status?.conditions,
      { type: ADDRESS_CONDITION, status: "True", reason: "Published", message: cidr },
      this.c.now(),
    );
    return this.p.writer.patchClaimStatus(claim, { ...claim.status, conditions }, version);
  }
}

/**
 * Claims as holders: alive while they have the same uid and are not deleted — or are being deleted
 * but still carry ReleaseAddress (their IPAddress may still exist: the block is theirs until released).
 */
export class ClaimHolders implements HolderAccess {
  constructor(
    private readonly c: Context,
    private readonly p: ClaimDeps,
    private readonly records: Records,
    private readonly status: ClaimStatus,
  ) {}

  cached(key: string, uid: string): LiveHolder | undefined {
    return this.view(this.p.claims.get(key), uid);
  }

  async live(key: string, uid: string, evenDeleting = false): Promise<LiveHolder | undefined> {
    const [namespace = "", name = ""] = key.split("/");
    return this.view(await this.p.writer.getClaim(namespace, name), uid, evenDeleting);
  }

  queue(key: string): void {
    this.p.claimQueue.add(key);
  }

  private view(claim: IPAddressClaim | undefined, uid: string, evenDeleting = false): LiveHolder | undefined {
    if (!claim || claim.metadata.uid !== uid) return undefined;
    const gone = claim.metadata.deletionTimestamp && !hasFinalizer(claim, RELEASE_ADDRESS_FINALIZER);
    if (gone && !evenDeleting) return undefined;
    return {
      key: `${claim.metadata.namespace}/${claim.metadata.name}`,
      published: publishedAddressOf(claim),
      revoke: (state, block, why) => this.revoke(claim, state, block, why),
    };
  }

  /** Written first (conditional on the version that shows no publication of it), then the record goes. */
  private async revoke(
    claim: IPAddressClaim,
    state: PoolState,
    block: HeldBlock,
    why: string,
  ): Promise<void> {
    this.c.d.log.warn("revoking an unpublished allocation record", {
      claim: block.requestKey,
      cidr: `${block.cidr}`,
      reason: why,
    });
    // The revocation count makes the message, hence the write, new: a write that changes nothing would
    // leave the version as it was, and a stale publication conditional on it could still land.
    const previous = claim.status?.conditions?.find((c) => c.type === READY)?.message;
    const message = revocationMessage(previous, `reallocating: ${why}`, [
      `record ${block.objectUid ?? block.objectName}`,
    ]);
    const status = this.status.withReady(claim, {
      ready: false,
      reason: ClaimReadyReason.AllocationFailed,
      message,
    }) ?? { ...claim.status };
    await this.p.writer.patchClaimStatus(claim, status, claim.metadata.resourceVersion);
    await this.records.giveBack(state, block);
  }
}
