// Writes of IPAMAllocation records and what they mean for the ledger: create one for a claim, record
// one read from the server, give a claim back, revoke a claim a waiting request has not published.

import { CAPI_IPAM_API_VERSION } from "../api/cluster-api.ts";
import {
  ALLOCATION_FINALIZER,
  API_VERSION,
  type IPAMAllocation,
  type IPAMRequest,
  RANGE_KIND_LABEL,
  RANGE_LABEL,
  type RangeObject,
} from "../api/types.ts";
import { rangeLabelValue, recordName } from "../api/validation.ts";
import { Cidr } from "../ipam/index.ts";
import { type OwnerReference, splitKey } from "../runtime/kube.ts";
import type { Context } from "./context.ts";
import type { Holder } from "./ledger.ts";
import type { HeldBlock, PoolState } from "./pool-state.ts";
import { statusOf } from "./ports.ts";
import { revocationMessage } from "./revocation.ts";
import { errorMessage } from "./status.ts";

/** The ledger entry a record stands for (its block already parsed). */
export function heldBlockOf(record: IPAMAllocation, rangeKey: string, cidr: Cidr): HeldBlock {
  const holder = record.spec.request;
  return {
    cidr,
    requestUid: holder.uid,
    requestKey: `${holder.namespace}/${holder.name}`,
    ...(holder.kind && holder.kind !== "IPAMRequest" ? { holderKind: holder.kind } : {}),
    objectName: record.metadata.name ?? "",
    rangeKey,
    phase: "held",
    objectUid: record.metadata.uid,
  };
}

function holderOwnerReference(block: HeldBlock, name: string): OwnerReference {
  const claim = block.holderKind === "IPAddressClaim";
  return {
    apiVersion: claim ? CAPI_IPAM_API_VERSION : API_VERSION,
    kind: claim ? "IPAddressClaim" : "IPAMRequest",
    name,
    uid: block.requestUid,
  };
}

export class Records {
  constructor(private readonly c: Context) {}

  /** Creates the block's allocation object; returns it, or the object another holder already has. */
  async create(range: RangeObject, state: PoolState, block: HeldBlock): Promise<IPAMAllocation> {
    const { namespace: requestNamespace = "", name: requestName } = splitKey(block.requestKey);
    const object: IPAMAllocation = {
      apiVersion: API_VERSION,
      kind: "IPAMAllocation",
      metadata: {
        name: block.objectName,
        namespace: state.recordNamespace,
        labels: { [RANGE_LABEL]: rangeLabelValue(state.name), [RANGE_KIND_LABEL]: state.ref.kind },
        // In the create body: no extra write, and the record cannot vanish while its holder lives.
        finalizers: [ALLOCATION_FINALIZER],
        // The cluster's garbage collector may help once the request goes (kubipam does not rely on
        // it: a request in another namespace cannot own the record).
        ...(requestNamespace === state.recordNamespace
          ? { ownerReferences: [holderOwnerReference(block, requestName)] }
          : {}),
      },
      spec: {
        range: { kind: state.ref.kind, name: state.name, uid: range.metadata.uid ?? "" },
        cidr: block.cidr.toString(),
        request: {
          namespace: requestNamespace,
          name: requestName,
          uid: block.requestUid,
          // Requests' records carry no kind, as before claims existed: older versions read them alike.
          ...(block.holderKind ? { kind: block.holderKind } : {}),
        },
      },
    };
    let failure: unknown;
    try {
      return await this.c.d.writer.createAllocation(object);
    } catch (err) {
      failure = err;
    }
    // Either it exists (AlreadyExists) or the outcome is unknown (timeout, 5xx): read it back.
    let existing: IPAMAllocation | undefined;
    try {
      existing = await this.c.d.writer.getAllocation(state.recordNamespace, block.objectName);
    } catch (readErr) {
      // Unknown outcome: keep the claim (conservative); the next attempt re-reads before use.
      this.c.d.log.warn("allocation outcome unknown", {
        cidr: `${block.cidr}`,
        error: errorMessage(readErr),
      });
      throw failure;
    }
    if (!existing) {
      this.c.ledger.undoClaim(state, block);
      throw failure;
    }
    return existing;
  }

  /**
   * Claims `cidr` (already marked in the allocator) for `holder` and creates its record: the held
   * block when the record is the holder's, else undefined — the block went to the holder the API
   * server knows (see `foreign`) and the caller tries another.
   */
  async claim(
    range: RangeObject,
    state: PoolState,
    holder: Holder,
    cidr: Cidr,
  ): Promise<HeldBlock | undefined> {
    const block = this.c.ledger.claim(state, holder, cidr, recordName(state.ref, cidr.toString()));
    const object = await this.create(range, state, block);
    if (object.spec.request.uid === block.requestUid) {
      block.phase = "held";
      block.objectUid = object.metadata.uid;
      return block;
    }
    this.foreign(state, block, object);
    return undefined;
  }

  /** Replaces this process's claim by the entry of the holder the API server knows. */
  foreign(state: PoolState, claim: HeldBlock, object: IPAMAllocation): void {
    // The read may be older than the watch: if the cache no longer (or not yet) has that object,
    // recording it would keep a block the watch already released. Free the claim instead; the
    // watch brings the object in if it still exists, and the API server guards the next try.
    const cached = this.c.d.allocations.get(state.recordKey(claim.objectName));
    if (cached?.metadata.uid !== object.metadata.uid) {
      this.c.ledger.undoClaim(state, claim);
      return;
    }
    this.record(state, object);
  }

  /** Records an allocation object read from the server; false if it overlaps another holder's block. */
  record(state: PoolState, object: IPAMAllocation): boolean {
    return (
      this.c.ledger.record(state, heldBlockOf(object, state.key, Cidr.parse(object.spec.cidr))) !== undefined
    );
  }

  /** Deletes this process's claim, only if the object is still the one it created. */
  async giveBack(state: PoolState, block: HeldBlock): Promise<void> {
    // No record known: nothing to delete (a record of that name may be someone else's now).
    if (!block.objectUid) return this.c.ledger.release(state, block);
    try {
      await this.c.d.writer.deleteAllocation(state.recordNamespace, block.objectName, block.objectUid);
    } catch (err) {
      // 409: the name now holds another allocation (ours was already collected); leave it be.
      if (statusOf(err) !== 409) throw err;
      this.c.ledger.forget(block);
      return;
    }
    this.c.ledger.release(state, block);
  }

  /**
   * Takes a claim away from a request that has not published it: first the request is written
   * (conditional on the version that shows no cidr), so no earlier fence holder can still publish the
   * claim, then its record goes.
   */
  async revoke(request: IPAMRequest, state: PoolState, block: HeldBlock, why: string): Promise<void> {
    this.c.d.log.warn("revoking an unpublished allocation record", {
      request: block.requestKey,
      cidr: `${block.cidr}`,
      reason: why,
    });
    // Counted: the write always changes the status, so the version moves (see revocation.ts).
    const status = this.c.status.requestStatus(
      request,
      request.status?.state ?? "Busy",
      revocationMessage(request.status?.message, `reallocating: ${why}`),
      undefined,
    );
    await this.c.d.writer.patchRequestStatus(request, status, request.metadata.resourceVersion);
    await this.giveBack(state, block);
  }
}
