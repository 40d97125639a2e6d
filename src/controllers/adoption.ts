// Requests that already have status.cidr: keep their block recorded and guarded, say where it stands
// against the range (shrunk below it, consent withdrawn), and adopt a block kubipam did not publish
// (the original kubipam, or a record removed by hand) only when it is inside the range, admitted and
// free — otherwise the request is flagged and holds nothing.

import { describePool, poolKey } from "../api/pool-ref.ts";
import type { IPAMRequest, RangeObject } from "../api/types.ts";
import { type InvalidSpec, isInvalid, type RangeRef, rangeRefOf, recordName } from "../api/validation.ts";
import { type Allocator, type Cidr, IpamError } from "../ipam/index.ts";
import { objectKey } from "../runtime/kube.ts";
import { admits, notAdmittedMessage } from "./consent.ts";
import { type Context, FENCE_RETRY_MS, rangeObject } from "./context.ts";
import { type HeldBlock, type PoolState, parseHeldCidr } from "./pool-state.ts";
import type { Records } from "./records.ts";
import type { Outcome } from "./request-reconciler.ts";
import type { RequestStatusOutcome } from "./status.ts";

/** Where a published block stands against its range now: inside it, not excluded, and admitted by it? */
function standing(
  request: IPAMRequest,
  admitted: boolean,
  state: PoolState,
  cidr: Cidr,
): RequestStatusOutcome {
  const cidrText = cidr.toString();
  const allocator = state.currentAllocator();
  const outside = allocator ? !allocator.contains(cidr) : false;
  const excluded = outside ? undefined : excludedEntry(allocator, cidr);
  const kept = `${cidrText} stays allocated until this request is deleted`;
  const pool = describePool(state.ref);
  let message = "";
  if (outside)
    message = `${cidrText} is no longer inside ${pool}; it stays allocated until this request is deleted`;
  else if (excluded !== undefined) message = `${cidrText} overlaps excluded ${excluded} of ${pool}; ${kept}`;
  else if (!admitted) message = `${notAdmittedMessage(state.ref, request.metadata.namespace)}; ${kept}`;
  return { state: "Ready", message, placement: { outside, admitted, excluded } };
}

/** The first exclusion (entry as written) a held block overlaps, if any. */
/** Why a published block cannot be reserved when an exclusion (or the gateway) is in the way: the engine's message names it. */
export function excludedRefusal(err: unknown): string | undefined {
  return err instanceof IpamError && err.code === "Excluded" ? `is excluded: ${err.message}` : undefined;
}

export function excludedEntry(allocator: Allocator | undefined, cidr: Cidr): string | undefined {
  if (!allocator) return undefined;
  const span = { first: cidr.start, last: cidr.end };
  return allocator.exclusionEntries().find((e) => e.first <= span.last && span.first <= e.last)?.entry;
}

/** How often a flagged request is looked at again. */
const FLAGGED_RETRY_MS = 60_000;

export class Adoption {
  constructor(
    private readonly c: Context,
    private readonly records: Records,
    private readonly dropExtras: (request: IPAMRequest, cidr: string) => void,
  ) {}

  /** A request that already has status.cidr: make sure its block is recorded and guarded. */
  async keep(
    request: IPAMRequest,
    ref: RangeRef | InvalidSpec,
    cidrText: string,
  ): Promise<Outcome | undefined> {
    const cidr = parseHeldCidr(cidrText);
    if (isInvalid(ref) || !cidr) {
      // Never drop a published allocation; just say what is wrong.
      const message = isInvalid(ref) ? ref.message : `status.cidr "${cidrText}" is not a CIDR`;
      return { status: { state: request.status?.state ?? "Ready", message } };
    }
    const { d, ledger } = this.c;
    const state = ledger.state(ref);
    state.busy.delete(objectKey(request));
    const range = rangeObject(d, ref);
    if (!range) return { status: { state: "Ready", message: `${describePool(ref)} not found` } };
    const block = state.held(cidr);
    if (!block || block.requestUid !== request.metadata.uid || block.phase === "claiming") {
      const problem = await this.adopt(request, range, state, cidr, block);
      if (problem === "retry") return { requeueAfter: FENCE_RETRY_MS };
      if (problem) {
        d.metrics.failed(state.ref, "conflict");
        const message = `status.cidr ${cidrText} was not allocated by kubipam and ${problem}: delete this request and create a new one`;
        // Looked at again later: the conflict may go (its other holder released, the range grown).
        return { status: { state: "Invalid", message }, requeueAfter: FLAGGED_RETRY_MS };
      }
    }
    this.dropExtras(request, cidrText);
    const admitted = admits(d, ref, range, request.metadata.namespace ?? "");
    return { status: standing(request, admitted, state, cidr) };
  }

  /**
   * Makes a published block that has no record of this request's the request's own: the record on the
   * server decides; without one, the block is adopted only when it is inside the range, the namespace
   * is admitted and the block is free. Returns what is wrong, "retry", or undefined once recorded.
   */
  private async adopt(
    request: IPAMRequest,
    range: RangeObject,
    state: PoolState,
    cidr: Cidr,
    block: HeldBlock | undefined,
  ): Promise<string | undefined> {
    const uid = request.metadata.uid ?? "";
    const object = await this.c.d.writer.getAllocation(
      state.recordNamespace,
      recordName(state.ref, cidr.toString()),
    );
    if (object && object.spec.request.uid !== uid) {
      return `${cidr} is held by request ${object.spec.request.namespace}/${object.spec.request.name}`;
    }
    if (object) {
      return this.records.record(state, object)
        ? undefined
        : `overlaps a block held by another request of ${describePool(state.ref)}`;
    }
    const own = block?.requestUid === uid;
    if (!own && !admits(this.c.d, state.ref, range, request.metadata.namespace ?? "")) {
      return `${describePool(state.ref)} does not admit namespace ${request.metadata.namespace}`;
    }
    const claim = this.reserve(request, state, cidr, block);
    if (typeof claim === "string") return claim;
    return this.record(range, state, claim);
  }

  /** The request's own claim of the block (reserved now if free), or why there is none. */
  private reserve(
    request: IPAMRequest,
    state: PoolState,
    cidr: Cidr,
    block: HeldBlock | undefined,
  ): HeldBlock | string {
    const uid = request.metadata.uid ?? "";
    // Its own block whose record went: kubipam published it, so it is written again wherever it lies.
    if (block?.requestUid === uid) return block;
    const allocator = this.c.ledger.allocator(state);
    if (!allocator?.contains(cidr)) return `is outside ${describePool(state.ref)}`;
    if (block) return `overlaps ${block.cidr} held by request ${block.requestKey}`;
    try {
      allocator.reserve(cidr);
    } catch (err) {
      return excludedRefusal(err) ?? `overlaps a block held by another request of ${describePool(state.ref)}`;
    }
    return this.c.ledger.claim(
      state,
      { uid, key: objectKey(request) },
      cidr,
      recordName(state.ref, cidr.toString()),
    );
  }

  /** Writes the adopted block's record and confirms the fence; undefined once it stands. */
  private async record(range: RangeObject, state: PoolState, claim: HeldBlock): Promise<string | undefined> {
    const { d } = this.c;
    claim.phase = "claiming";
    const created = await this.records.create(range, state, claim);
    if (created.spec.request.uid !== claim.requestUid) {
      this.records.foreign(state, claim, created);
      return `${claim.cidr} is held by request ${created.spec.request.namespace}/${created.spec.request.name}`;
    }
    claim.phase = "held";
    claim.objectUid = created.metadata.uid;
    if (await d.fence.confirm()) return undefined;
    // Only the fence holder may stand behind a block: give the record back and try later.
    await this.records.giveBack(state, claim);
    return "retry";
  }

  /** Bootstrap: reserves a block a request published without a record, if inside, admitted and free. */
  reservePublished(request: IPAMRequest): void {
    const cidr = parseHeldCidr(request.status?.cidr ?? "");
    const ref = rangeRefOf(request);
    if (!cidr || isInvalid(ref) || request.metadata.deletionTimestamp) return;
    const state = this.c.ledger.find(poolKey(ref));
    const allocator = state?.currentAllocator();
    const range = rangeObject(this.c.d, ref);
    if (!state || !allocator || !range || state.held(cidr)) return;
    if (!admits(this.c.d, ref, range, request.metadata.namespace ?? "")) return;
    if (!allocator.contains(cidr)) return;
    try {
      allocator.reserve(cidr);
    } catch {
      return; // not free: the request's reconcile flags it
    }
    const holder = { uid: request.metadata.uid ?? "", key: objectKey(request) };
    this.c.ledger.claim(state, holder, cidr, recordName(state.ref, cidr.toString()));
  }
}
