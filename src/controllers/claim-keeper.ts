// Claims that published an address (kubipam's Address condition): keep the block recorded and guarded,
// make the IPAddress stand (created, repaired, re-created with the same address after a deletion), and
// say Ready. And the release of a deleted claim: IPAddress unprotected and deleted, records deleted and
// the block freed, then the claim's ReleaseAddress finalizer removed.

import {
  ClaimReadyReason,
  type IPAddressClaim,
  publishedAddressOf,
  RELEASE_ADDRESS_FINALIZER,
} from "../api/cluster-api.ts";
import { describePool, type PoolRef, poolKey } from "../api/pool-ref.ts";
import type { RangeObject } from "../api/types.ts";
import { claimPrefix, recordName } from "../api/validation.ts";
import type { Cidr } from "../ipam/index.ts";
import type { ReconcileResult } from "../runtime/controller.ts";
import { hasFinalizer } from "../runtime/finalizers.ts";
import { objectKey } from "../runtime/kube.ts";
import { excludedRefusal } from "./adoption.ts";
import { type AddressFacts, AddressKeeper, desiredAddress, isAddressOf } from "./claim-addresses.ts";
import type { ClaimDeps } from "./claim-ports.ts";
import type { ClaimStatus } from "./claim-status.ts";
import { admits } from "./consent.ts";
import { type Context, FENCE_RETRY_MS, rangeObject } from "./context.ts";
import { announceRelease } from "./cooling-state.ts";
import { ownRecordsOf } from "./foreign-records.ts";
import { type HeldBlock, type PoolState, parseHeldCidr } from "./pool-state.ts";
import type { Records } from "./records.ts";

type Step = ReconcileResult | undefined;
/** How often a flagged claim is looked at again (its conflict may go). */
const FLAGGED_RETRY_MS = 60_000;
const AGAIN_MS = 50;

export class ClaimKeeper {
  private readonly addresses: AddressKeeper;

  constructor(
    private readonly c: Context,
    private readonly p: ClaimDeps,
    private readonly records: Records,
    private readonly status: ClaimStatus,
  ) {
    this.addresses = new AddressKeeper(p);
  }

  publishedCidr(claim: IPAddressClaim): string | undefined {
    return publishedAddressOf(claim);
  }

  async keep(claim: IPAddressClaim, pool: PoolRef, cidrText: string): Promise<Step> {
    const failed = (message: string) => ({
      ready: false,
      reason: ClaimReadyReason.AllocationFailed,
      message,
    });
    const cidr = parseHeldCidr(cidrText);
    if (!cidr) {
      await this.status.ready(
        claim,
        failed(`published address "${cidrText}" is not a CIDR: delete this claim`),
      );
      return undefined;
    }
    const range = rangeObject(this.c.d, pool);
    if (!range) {
      const message = `${describePool(pool)} not found; ${cidrText} stays with this claim until it is deleted`;
      await this.status.ready(claim, { ready: false, reason: ClaimReadyReason.PoolNotReady, message });
      return undefined;
    }
    const state = this.c.ledger.state(pool);
    const block = state.held(cidr);
    if (!block || block.requestUid !== claim.metadata.uid || block.phase === "claiming") {
      // The condition was rewritten to another block: the one the claim holds stays (a machine may use it).
      const holds = this.holdsInstead(claim, state, cidr);
      if (holds) return this.restore(claim, state, block, holds, cidrText);
      const problem = await this.rerecord(claim, range, state, cidr, block);
      if (problem === "retry") return { requeueAfter: FENCE_RETRY_MS };
      if (problem) {
        this.c.d.metrics.failed(state.ref, "conflict");
        await this.status.ready(
          claim,
          failed(`${cidrText} was not allocated by kubipam and ${problem}: delete this claim`),
        );
        return { requeueAfter: FLAGGED_RETRY_MS };
      }
    }
    this.dropExtras(claim, cidrText);
    return this.stand(claim, pool, state, range, cidr);
  }

  /** The IPAddress as it must be, then Ready. */
  private async stand(
    claim: IPAddressClaim,
    pool: PoolRef,
    state: PoolState,
    range: RangeObject,
    cidr: Cidr,
  ): Promise<Step> {
    const facts = this.facts(pool, state, range, cidr);
    if (typeof facts === "string") {
      // No prefix known now: an existing IPAddress stays as it is; a missing one waits for the pool.
      const existing = this.p.addresses.get(objectKey(claim));
      if (existing && isAddressOf(existing, claim) && !existing.metadata.deletionTimestamp) return undefined;
      await this.status.ready(claim, { ready: false, reason: ClaimReadyReason.PoolNotReady, message: facts });
      return undefined;
    }
    const outcome = await this.addresses.ensure(claim, desiredAddress(claim, pool, facts));
    if (outcome.kind === "waiting") return { requeueAfter: AGAIN_MS * 20 };
    if (outcome.kind === "problem") {
      await this.status.ready(claim, {
        ready: false,
        reason: ClaimReadyReason.AllocationFailed,
        message: outcome.message,
      });
      return { requeueAfter: FLAGGED_RETRY_MS };
    }
    const message = `${cidr.addressString()}/${facts.prefix} from ${describePool(pool)}`;
    await this.status.ready(claim, { ready: true, reason: ClaimReadyReason.Ready, message });
    return undefined;
  }

  private facts(pool: PoolRef, state: PoolState, range: RangeObject, cidr: Cidr): AddressFacts | string {
    if (!state.spec) return `${describePool(pool)} not valid: ${state.invalidMessage}`;
    const prefix = claimPrefix(state.spec);
    if (!prefix.ok) return `${describePool(pool)}: ${prefix.message}`;
    return { cidr, prefix: prefix.prefix, gateway: state.spec.gateway, poolUid: range.metadata.uid ?? "" };
  }

  /**
   * A published block the ledger does not hold as this claim's: the record on the server decides;
   * without one, the claim's own block (its record deleted by hand) is recorded again, and any other
   * only when inside the pool and free. Returns what is wrong, "retry", or undefined once recorded.
   */
  private async rerecord(
    claim: IPAddressClaim,
    range: RangeObject,
    state: PoolState,
    cidr: Cidr,
    block: HeldBlock | undefined,
  ): Promise<string | undefined> {
    const uid = claim.metadata.uid ?? "";
    const name = recordName(state.ref, cidr.toString());
    const object = await this.c.d.writer.getAllocation(state.recordNamespace, name);
    const heldBy = (o: { spec: { request: { namespace: string; name: string; kind?: string } } }) =>
      `${cidr} is held by ${o.spec.request.kind ?? "IPAMRequest"} ${o.spec.request.namespace}/${o.spec.request.name}`;
    if (object && object.spec.request.uid !== uid) return heldBy(object);
    if (object)
      return this.records.record(state, object) ? undefined : `overlaps a block held in ${state.key}`;
    const own = this.ownBlock(claim, range, state, cidr, block, name);
    if (typeof own === "string") return own;
    own.phase = "claiming";
    const created = await this.records.create(range, state, own);
    if (created.spec.request.uid !== uid) {
      this.records.foreign(state, own, created);
      return heldBy(created);
    }
    own.phase = "held";
    own.objectUid = created.metadata.uid;
    if (await this.c.d.fence.confirm()) return undefined;
    // Only the fence holder may stand behind a block: give the record back and try later.
    await this.records.giveBack(state, own);
    return "retry";
  }

  /** The claim's own entry for the block (reserved now if inside the pool, admitted and free), or why not. */
  private ownBlock(
    claim: IPAddressClaim,
    range: RangeObject,
    state: PoolState,
    cidr: Cidr,
    block: HeldBlock | undefined,
    name: string,
  ): HeldBlock | string {
    const uid = claim.metadata.uid ?? "";
    // Its own block whose record went: kubipam published it, so it is written again wherever it lies.
    if (block?.requestUid === uid) return block;
    // A block kubipam did not publish is adopted only for a namespace the pool admits (as for requests).
    if (!admits(this.c.d, state.ref, range, claim.metadata.namespace ?? "")) {
      return `${describePool(state.ref)} does not admit namespace ${claim.metadata.namespace}`;
    }
    const allocator = this.c.ledger.allocator(state);
    if (!allocator?.contains(cidr)) return `is outside ${state.key}`;
    if (block) return `overlaps ${block.cidr} held by ${block.requestKey}`;
    try {
      allocator.reserve(cidr);
    } catch (err) {
      return excludedRefusal(err) ?? `is not free in ${state.key}`;
    }
    return this.c.ledger.claim(state, { uid, key: objectKey(claim), kind: "IPAddressClaim" }, cidr, name);
  }

  /**
   * The block the claim holds when its Address condition names another (not the claim's in the
   * ledger): its IPAddress's address if that differs, else — without an IPAddress — its recorded block.
   */
  private holdsInstead(claim: IPAddressClaim, state: PoolState, cidr: Cidr): string | undefined {
    const address = this.p.addresses.get(objectKey(claim));
    if (address && isAddressOf(address, claim) && !address.metadata.deletionTimestamp) {
      if (address.spec.address === cidr.addressString()) return undefined;
      const bits = address.spec.address.includes(":") ? 128 : 32;
      return parseHeldCidr(`${address.spec.address}/${bits}`)?.toString();
    }
    const recorded = this.c.ledger
      .blocksOf(claim.metadata.uid ?? "")
      .find((b) => b.phase === "held" && b.objectUid && b.rangeKey === state.key);
    return recorded && recorded.cidr.toString() !== cidr.toString() ? recorded.cidr.toString() : undefined;
  }

  /** Puts the Address condition back to the held block (conditional write), and says so. */
  private async restore(
    claim: IPAddressClaim,
    state: PoolState,
    reserved: HeldBlock | undefined,
    holds: string,
    rewritten: string,
  ): Promise<Step> {
    // Reserved for the rewritten condition at bootstrap (never recorded): taken back at once.
    if (
      reserved &&
      reserved.requestUid === claim.metadata.uid &&
      reserved.phase === "claiming" &&
      !reserved.objectUid
    ) {
      this.c.ledger.undoClaim(state, reserved);
    }
    const message = `the Address condition was changed to ${rewritten}, but this claim holds ${holds}: restored (an allocated address never moves; delete the claim to release it)`;
    this.c.d.log.warn("restoring a rewritten Address condition", {
      claim: objectKey(claim),
      holds,
      rewritten,
    });
    await this.status.publish(claim, holds, claim.metadata.resourceVersion);
    this.c.d.events.emit(claim, "Warning", "AddressConditionRestored", message);
    return { requeueAfter: AGAIN_MS };
  }

  /** Other blocks of the claim (a race lost, a stale writer's record) go, via garbage collection. */
  private dropExtras(claim: IPAddressClaim, cidr: string): void {
    for (const block of this.c.ledger.blocksOf(claim.metadata.uid ?? "")) {
      if (block.cidr.toString() === cidr) continue;
      const state = this.c.ledger.stateForBlock(block);
      if (state) this.c.d.allocationQueue.add(state.recordKey(block.objectName));
    }
  }

  /**
   * A cooldown on the pool (§7) is announced before the records go, so that it outlives a crash; if a
   * delete fails, the announcements are abandoned (the blocks stay held) and the release is retried.
   */
  private async deleteRecords(blocks: HeldBlock[], records: Map<string, string>): Promise<void> {
    const announced: [PoolState, Cidr][] = [];
    try {
      for (const block of blocks) {
        const state = this.c.ledger.stateForBlock(block);
        if (!state) continue;
        await announceRelease(this.c, state, block.cidr);
        announced.push([state, block.cidr]);
      }
      for (const [key, objectUid] of records) {
        const [namespace = "", name = ""] = key.split("/");
        await this.c.d.writer.deleteAllocation(namespace, name, objectUid);
      }
    } catch (err) {
      for (const [state, cidr] of announced) state.cooling.abandon(cidr);
      throw err;
    }
  }

  /** No claim under this key in the cache: an IPAddress kubipam made there may be an orphan. */
  async orphan(key: string): Promise<undefined> {
    const address = this.p.addresses.get(key);
    if (address) await this.addresses.removeOrphan(address);
    return undefined;
  }

  /** A deleted claim: IPAddress first, then its blocks, then the finalizer. */
  async release(claim: IPAddressClaim, pool: PoolRef): Promise<Step> {
    if (!hasFinalizer(claim, RELEASE_ADDRESS_FINALIZER)) return undefined;
    await this.addresses.remove(claim);
    const { d, ledger } = this.c;
    const uid = claim.metadata.uid ?? "";
    const records = new Map<string, string>();
    for (const a of ownRecordsOf(this.c, uid)) records.set(objectKey(a), a.metadata.uid ?? "");
    for (const block of ledger.blocksOf(uid)) {
      const state = ledger.stateForBlock(block);
      // Without a known record uid nothing is deleted by name (the name may hold another's record).
      if (state && block.objectUid) records.set(state.recordKey(block.objectName), block.objectUid);
    }
    // A block never recorded (a claim in flight, not published) is freed at once, without a cooldown.
    const published = publishedAddressOf(claim);
    const blocks = ledger.blocksOf(uid);
    for (const block of blocks.filter((b) => neverRecorded(b, published))) {
      const state = ledger.stateForBlock(block);
      if (state) ledger.undoClaim(state, block);
    }
    const kept = blocks.filter((b) => !neverRecorded(b, published));
    await this.deleteRecords(kept, records);
    for (const block of kept) {
      const state = ledger.stateForBlock(block);
      if (state) ledger.release(state, block);
    }
    await this.p.writer.setClaimFinalizer(claim, false);
    d.rangeQueue.add(poolKey(pool));
    return undefined;
  }
}

/** A claim in flight that never got a record and was not published (a record deleted by hand had one). */
function neverRecorded(block: HeldBlock, published: string | undefined): boolean {
  return block.phase === "claiming" && !block.objectUid && block.cidr.toString() !== published;
}
