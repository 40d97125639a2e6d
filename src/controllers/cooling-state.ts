// The cooldowns of one range (§7 reuseCooldownSeconds) as the controller keeps them: the cooling
// blocks restored from status.cooling until the allocator is built, and the releases about to happen
// (intents). An intent is written into status.cooling before the block's record is deleted, so a crash
// between that delete and the next status write cannot lose the cooldown (docs/internals.md).

import {
  type Allocator,
  type Cidr,
  type CoolingBlock,
  type Family,
  formatCooling,
  parseCoolingEntries,
} from "../ipam/index.ts";
import { type Context, rangeObject } from "./context.ts";
import type { PoolState } from "./pool-state.ts";

/**
 * Before a held block's record is deleted: with a cooldown on the range, announce the release and
 * have status.cooling written with it, so the cooldown outlives a crash right after the delete. The
 * announcement is dropped if the write fails (the caller's delete then does not happen either).
 */
export async function announceRelease(c: Context, state: PoolState, cidr: Cidr): Promise<void> {
  const until = state.coolUntil(c.now().getTime());
  const range = rangeObject(c.d, state.ref);
  if (until === undefined || !range) return;
  state.cooling.intend(cidr, until);
  try {
    await c.status.cooling(range, state);
  } catch (err) {
    state.cooling.abandon(cidr);
    throw err;
  }
}

export class CoolingState {
  /** status.cooling as read before the allocator was built. */
  private restored: string[] = [];
  /** Releases about to happen, by block: the end time their cooldown will have. */
  private readonly intents = new Map<string, CoolingBlock>();

  /** Keeps status.cooling for the allocator's first build (later reads are our own writes). */
  restore(entries: string[] | undefined): void {
    this.restored = Array.isArray(entries) ? [...entries] : [];
  }

  /**
   * The restored cooling blocks of the range's family; junk is dropped (it must not block the range):
   * one bad entry (a user's edit) costs only its own cooldown.
   */
  restoredBlocks(family: Family): CoolingBlock[] {
    return parseCoolingEntries(this.restored, family).blocks;
  }

  /** Announces that `cidr` is about to be released with a cooldown until `until`. */
  intend(cidr: Cidr, until: number): void {
    this.intents.set(cidr.toString(), { cidr, until });
  }

  /** The end of the announced cooldown of `cidr`, if any; the announcement is consumed. */
  take(cidr: Cidr): number | undefined {
    const key = cidr.toString();
    const intent = this.intents.get(key);
    this.intents.delete(key);
    return intent?.until;
  }

  /** Drops an announcement whose release did not happen. */
  abandon(cidr: Cidr): void {
    this.intents.delete(cidr.toString());
  }

  /**
   * status.cooling: the allocator's cooling blocks and the announced ones (restored entries until
   * the allocator is built), in a stable order.
   */
  export(allocator: Allocator | undefined): string[] {
    if (!allocator) return this.restored;
    const entries = allocator.exportCooling();
    if (this.intents.size === 0) return entries;
    const all = [...entries, ...[...this.intents.values()].map(formatCooling)];
    return all.sort(compareEntries);
  }
}

function compareEntries(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
