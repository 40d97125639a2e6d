// Garbage collection of IPAMAllocation records: deletes a record that guards nothing — its request is
// gone or holds another block, it lost an overlap to the holder in the ledger, or it is not named by
// its block. A record that carries a waiting request's claim is revoked first (Records.revoke), so no
// stale writer can still publish it. Watches: IPAMAllocation (every record once at start, malformed or
// conflicting ones, records whose request this process has not seen); queued also when a request goes.

import type { IPAMAllocation } from "../api/types.ts";
import { objectKey } from "../runtime/kube.ts";
import type { Context } from "./context.ts";
import { statusOf } from "./ports.ts";
import { type HeldBlock, parseHeldCidr } from "./range-state.ts";
import type { Records } from "./records.ts";

export class AllocationCollector {
  constructor(
    private readonly c: Context,
    private readonly records: Records,
  ) {}

  async reconcile(key: string): Promise<void> {
    const { d, ledger } = this.c;
    const allocation = d.allocations.get(key);
    if (!allocation) return;
    const request = allocation.spec?.request;
    if (!request?.uid) return this.collect(allocation);
    const cidr = parseHeldCidr(allocation.spec.cidr);
    const state = ledger.find(`${allocation.metadata.namespace ?? ""}/${allocation.spec.range?.name}`);
    const entry = cidr && state?.held(cidr);
    if (entry && entry.requestUid === request.uid && entry.phase === "claiming") return; // ours, in flight
    const recorded =
      entry !== undefined &&
      entry.requestUid === request.uid &&
      (entry.objectUid ?? allocation.metadata.uid) === allocation.metadata.uid;
    const cached = d.requests.get(`${request.namespace}/${request.name}`);
    if (recorded && cached?.metadata.uid === request.uid) {
      const published = cached.status?.cidr;
      if (!published || published === allocation.spec.cidr) return;
    }
    // The cache may lag behind: decide on a live read.
    const live = await d.writer.getRequest(request.namespace, request.name);
    const holder = live?.metadata.uid === request.uid && !live.metadata.deletionTimestamp ? live : undefined;
    if (recorded && holder && (!holder.status?.cidr || holder.status.cidr === allocation.spec.cidr)) return;
    if (!recorded && holder && !holder.status?.cidr && state && cidr) {
      // A record that lost to the ledger's holder but names a waiting request: revoke, then collect.
      const claim: HeldBlock = {
        cidr,
        requestUid: request.uid,
        requestKey: `${request.namespace}/${request.name}`,
        objectName: allocation.metadata.name ?? "",
        rangeKey: state.key,
        phase: "held",
        objectUid: allocation.metadata.uid,
      };
      await this.records.revoke(
        holder,
        state,
        claim,
        `the record ${allocation.metadata.name} overlaps another block`,
      );
      d.requestQueue.add(claim.requestKey);
      return;
    }
    await this.collect(allocation);
    // A request that published the losing block learns that it holds nothing kubipam stands behind.
    if (!recorded && holder?.status?.cidr === allocation.spec.cidr) d.requestQueue.add(objectKey(holder));
    if (recorded && state && entry) ledger.release(state, entry);
  }

  private async collect(allocation: IPAMAllocation): Promise<void> {
    this.c.d.log.info("deleting orphaned IPAMAllocation", {
      allocation: objectKey(allocation),
      cidr: allocation.spec?.cidr,
    });
    try {
      await this.c.d.writer.deleteAllocation(
        allocation.metadata.namespace ?? "",
        allocation.metadata.name ?? "",
        allocation.metadata.uid,
      );
    } catch (err) {
      // 409: the name holds a newer allocation already; its own events will bring it here if needed.
      if (statusOf(err) !== 409) throw err;
    }
  }
}
