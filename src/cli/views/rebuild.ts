// A range's allocator rebuilt from the cluster's objects as the controller would rebuild it, for the
// read-only views (`kubectl ipam usage/show`) and the UI's map: the valid spec, status.cooling (entries
// it cannot read left out: the controller drops them too) and its records' blocks, kept even outside
// the pool (pending removals).

import type { ValidRangeSpec } from "../../api/validation.ts";
import { Allocator, type Cidr, type Family, parseCoolingEntries } from "../../ipam/index.ts";

export interface Rebuilt<T> {
  allocator: Allocator;
  /** The items the allocator took. */
  held: T[];
  /** The ones it refused (overlapping another, other family), with why. */
  rejected: { item: T; reason: string }[];
}

export function rebuildRange<T extends { cidr: Cidr }>(
  valid: ValidRangeSpec,
  family: Family,
  cooling: unknown,
  items: readonly T[],
): Rebuilt<T> {
  const { allocator, rejected } = Allocator.rebuild(
    {
      family,
      blocks: valid.blocks,
      mode: valid.mode,
      exclusions: valid.exclusions,
      cooling: parseCoolingEntries(cooling, family).blocks,
    },
    items.map((item) => item.cidr),
    { keepOutside: true },
  );
  // The allocator reports rejections by block: each goes back to the first unmatched item of its block.
  const refused = new Map<T, string>();
  for (const r of rejected) {
    const match = items.find((item) => !refused.has(item) && item.cidr === r.cidr);
    if (match) refused.set(match, r.reason);
  }
  return {
    allocator,
    held: items.filter((item) => !refused.has(item)),
    rejected: [...refused].map(([item, reason]) => ({ item, reason })),
  };
}
