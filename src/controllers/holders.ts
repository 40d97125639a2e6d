// The kinds of holder a record may name (IPAMRequest, Cluster API's IPAddressClaim) behind one
// interface, so that the handlers and garbage collection judge a record the same way whoever holds it:
// is its holder alive (same uid), which block did it publish, how is an unpublished claim of it revoked
// (a write to the holder, conditional on the version that shows no publication), where is it queued.

import type { HolderKind, IPAMAllocation, IPAMRequest } from "../api/types.ts";
import type { Context } from "./context.ts";
import type { HeldBlock, PoolState } from "./pool-state.ts";
import type { Records } from "./records.ts";

/** A live holder: the very object a record names (same uid), as the cache or the API server has it. */
export interface LiveHolder {
  key: string;
  /** The block it published (kubipam's publication point for its kind), if any. */
  published: string | undefined;
  /**
   * Takes an unpublished block back: first the holder is written, conditional on the version this
   * view was read at (one that shows no publication), so no earlier fence holder can still publish
   * it; then the block's record goes.
   */
  revoke(state: PoolState, block: HeldBlock, why: string): Promise<void>;
}

export interface HolderAccess {
  /** The cached holder if it is still the one with `uid` and still holds (undefined otherwise). */
  cached(key: string, uid: string): LiveHolder | undefined;
  /** The same, read from the API server now; `evenDeleting`: also while it is being deleted. */
  live(key: string, uid: string, evenDeleting?: boolean): Promise<LiveHolder | undefined>;
  /** Queues the holder's reconcile. */
  queue(key: string): void;
}

export type HolderRegistry = (kind: HolderKind) => HolderAccess;

/** The kind of holder a record names (records without a kind are requests'). */
export function recordHolderKind(record: IPAMAllocation): HolderKind {
  return record.spec?.request?.kind ?? "IPAMRequest";
}

export function blockHolderKind(block: HeldBlock): HolderKind {
  return block.holderKind ?? "IPAMRequest";
}

/** The holder access for a record's or a block's holder. */
export function holderOfRecord(c: Context, record: IPAMAllocation): HolderAccess {
  return c.holders(recordHolderKind(record));
}

export function holderOfBlock(c: Context, block: HeldBlock): HolderAccess {
  return c.holders(blockHolderKind(block));
}

/** IPAMRequest holders: status.cidr is the publication; a deleting request holds nothing. */
export class RequestHolders implements HolderAccess {
  constructor(
    private readonly c: Context,
    private readonly records: Records,
  ) {}

  cached(key: string, uid: string): LiveHolder | undefined {
    return this.view(this.c.d.requests.get(key), uid);
  }

  async live(key: string, uid: string, evenDeleting = false): Promise<LiveHolder | undefined> {
    const [namespace = "", name = ""] = key.split("/");
    return this.view(await this.c.d.writer.getRequest(namespace, name), uid, evenDeleting);
  }

  queue(key: string): void {
    this.c.d.requestQueue.add(key);
  }

  private view(request: IPAMRequest | undefined, uid: string, evenDeleting = false): LiveHolder | undefined {
    if (!request || request.metadata.uid !== uid) return undefined;
    if (request.metadata.deletionTimestamp && !evenDeleting) return undefined;
    return {
      key: `${request.metadata.namespace}/${request.metadata.name}`,
      published: request.status?.cidr,
      revoke: (state, block, why) => this.records.revoke(request, state, block, why),
    };
  }
}

/** Stands in when claims are not wired (fakes): never judges a claim's record, so never collects it. */
export const noClaimHolders: HolderAccess = {
  cached: () => undefined,
  live: () => Promise.reject(new Error("IPAddressClaim holders are not configured")),
  queue: () => {},
};
