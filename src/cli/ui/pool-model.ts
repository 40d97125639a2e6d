// A range of either kind as the engine sees it, for the map: its spec parsed into pool blocks,
// exclusions and the gateway, its cooling blocks from status.cooling, and its records loaded into an
// Allocator (records outside the pool kept as pending removals). Pure; the views' range-model.ts does
// the same for the tables; this one keeps who holds each record (request or claim) for the page.

import { type PoolKind, poolKey, poolOfObject } from "../../api/pool-ref.ts";
import type { IPAMAllocation, IPAMRangeSpec } from "../../api/types.ts";
import { validateRangeSpec } from "../../api/validation.ts";
import { type Allocator, Cidr, type Family } from "../../ipam/index.ts";
import { type Rebuilt, rebuildRange } from "../views/rebuild.ts";
import { type HolderRef, holderOfRecord, type RangeObject } from "./objects.ts";

export interface HeldRecord {
  cidr: Cidr;
  name: string;
  holder: HolderRef | undefined;
}

export interface PoolModel {
  key: string;
  kind: PoolKind;
  namespace: string;
  name: string;
  state: string;
  message: string;
  /** Why the spec cannot be drawn (undefined when it can). */
  invalid: string | undefined;
  family: Family | undefined;
  mode: string;
  ranges: string[];
  exclude: string[];
  gateway: Cidr | undefined;
  cooldownSeconds: number;
  /** Undefined when the spec is invalid or the pool is empty. */
  allocator: Allocator | undefined;
  /** Records the allocator took. */
  held: HeldRecord[];
  /** Records it could not take (unparsable, other family, overlapping another). */
  rejected: { name: string; cidr: string; reason: string }[];
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function parseRecords(records: readonly IPAMAllocation[], rejected: PoolModel["rejected"]): HeldRecord[] {
  const parsed: HeldRecord[] = [];
  for (const record of records) {
    const text = record.spec?.cidr ?? "";
    const cidr = Cidr.tryParse(text);
    const name = record.metadata.name ?? "";
    if (cidr) parsed.push({ cidr, name, holder: holderOfRecord(record) });
    else rejected.push({ name, cidr: text, reason: `"${text}" is not a CIDR` });
  }
  return parsed;
}

/** The model of `range` from its spec and its own records (see rangeKeyOfRecord). */
export function poolModel(range: RangeObject, records: readonly IPAMAllocation[]): PoolModel {
  const spec = range.spec ?? {};
  const pool = poolOfObject(range);
  const base = {
    key: poolKey(pool),
    kind: pool.kind,
    namespace: pool.namespace,
    name: pool.name,
    state: range.status?.state ?? "Unknown",
    message: range.status?.message ?? "",
    mode: spec.mode || "FirstMatch",
    ranges: stringList(spec.ranges),
    exclude: stringList(spec.exclude),
    cooldownSeconds: typeof spec.reuseCooldownSeconds === "number" ? spec.reuseCooldownSeconds : 0,
    rejected: [] as PoolModel["rejected"],
  };
  const parsed = parseRecords(records, base.rejected);
  const empty = { allocator: undefined, held: [], gateway: undefined };
  const valid = validateRangeSpec(spec as IPAMRangeSpec);
  if (!valid.ok) return { ...base, ...empty, state: "Invalid", invalid: valid.message, family: undefined };
  const family = valid.family ?? parsed[0]?.cidr.family;
  const gateway = valid.gateway ? Cidr.parseIP(valid.gateway) : undefined;
  if (family === undefined) return { ...base, ...empty, invalid: undefined, family, gateway };
  let built: Rebuilt<HeldRecord>;
  try {
    built = rebuildRange(valid, family, range.status?.cooling, parsed);
  } catch (error) {
    return { ...base, ...empty, invalid: messageOf(error), family };
  }
  for (const { item, reason } of built.rejected) {
    base.rejected.push({ name: item.name, cidr: item.cidr.toString(), reason });
  }
  return { ...base, invalid: undefined, family, gateway, allocator: built.allocator, held: built.held };
}
