// Publishing claimed blocks in batches: every claim whose record exists joins the next batch, one
// allocation-fence confirmation (one lease write) covers the whole batch, then each request's
// status.cidr is written — conditional on the request's version seen before that confirmation. The
// workers hand claims over and move on, so under load many publishes share one confirmation.

import { EventReason } from "../api/conditions.ts";
import { describePool } from "../api/pool-ref.ts";
import type { IPAMRequest } from "../api/types.ts";
import { objectKey } from "../runtime/kube.ts";
import { type Context, FENCE_RETRY_MS } from "./context.ts";
import type { HeldBlock, PoolState } from "./pool-state.ts";
import { statusOf } from "./ports.ts";
import type { Records } from "./records.ts";

export interface Publication {
  request: IPAMRequest;
  state: PoolState;
  /** Held: its record exists (created before this publication was submitted). */
  block: HeldBlock;
  /** The request's resourceVersion seen before the block was claimed. */
  version: string | undefined;
}

/** After a failed write: look again soon, without growing anyone's backoff. */
const AGAIN_MS = 50;
const RETRY_MS = 1000;

export class Publisher {
  /** Waiting for the next batch, by request key (a newer submission replaces an older one). */
  private readonly waiting = new Map<string, Publication>();
  private draining: Promise<void> | undefined;

  constructor(
    private readonly c: Context,
    private readonly records: Records,
    private readonly dropExtras: (request: IPAMRequest, cidr: string) => void,
  ) {}

  submit(publication: Publication): void {
    this.waiting.set(objectKey(publication.request), publication);
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  /** Resolves once nothing waits or is being published (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    while (this.waiting.size > 0) {
      const batch = [...this.waiting.values()];
      this.waiting.clear();
      // One confirmation for the batch: every record in it was created before this call.
      let held = false;
      try {
        held = await this.c.d.fence.confirm();
      } catch (err) {
        this.c.d.log.warn("could not confirm the allocation fence", { error: err });
      }
      await Promise.all(batch.map((p) => this.publishOne(p, held)));
    }
  }

  private async publishOne(p: Publication, held: boolean): Promise<void> {
    const { d } = this.c;
    const key = objectKey(p.request);
    // Not (or no longer) the fence holder: publish nothing; the claim stays for the next attempt.
    if (!held) return d.requestQueue.addAfter(key, FENCE_RETRY_MS);
    try {
      await this.write(p);
    } catch (err) {
      d.log.error("publishing an allocation failed; will retry", { request: key, error: err });
      const code = statusOf(err);
      if (code === 403 || code === 400 || code === 422) await this.c.status.rejected(p.request, err);
      d.requestQueue.addAfter(key, RETRY_MS);
    }
  }

  /** Writes status.cidr; the CEL rule makes the first writer win, a loser gives its block back. */
  private async write({ request, state, block, version }: Publication): Promise<void> {
    const { d, status } = this.c;
    const cidr = block.cidr.toString();
    try {
      await d.writer.patchRequestStatus(request, status.requestStatus(request, "Ready", "", cidr), version);
    } catch (err) {
      return this.failed(request, state, block, err);
    }
    const created = request.metadata.creationTimestamp;
    const t = created ? Date.parse(created) : Number.NaN;
    d.metrics.allocated(
      state.ref,
      Number.isNaN(t) ? undefined : Math.max(0, (this.c.now().getTime() - t) / 1000),
    );
    if (d.allocationEvents ?? true) {
      const note = `allocated ${cidr} from ${describePool(state.ref)}`;
      d.events.emit(request, "Normal", EventReason.Allocated, note, "low");
    }
    this.dropExtras(request, cidr);
  }

  private async failed(
    request: IPAMRequest,
    state: PoolState,
    block: HeldBlock,
    err: unknown,
  ): Promise<void> {
    const { d } = this.c;
    const code = statusOf(err);
    if (code === 404) return this.records.giveBack(state, block);
    // The request changed since it was read (or the claim was revoked): decide again.
    if (code === 409) return d.requestQueue.addAfter(objectKey(request), AGAIN_MS);
    if (code !== 422) throw err;
    // The CEL rule refused: another writer published first, or the request is another one now.
    const fresh = await d.writer.getRequest(request.metadata.namespace ?? "", request.metadata.name ?? "");
    if (!fresh || fresh.metadata.uid !== request.metadata.uid) return this.records.giveBack(state, block);
    if (fresh.status?.cidr && fresh.status.cidr !== block.cidr.toString()) {
      d.metrics.failed(state.ref, "conflict");
      return this.records.giveBack(state, block);
    }
    throw err;
  }
}
