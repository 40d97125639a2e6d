// The JSON the page reads: a summary per range (the list) and one range's map with its holders.
// Pure: plain objects in, plain JSON-ready objects out. Addresses counts are exact decimal strings.

import type { IPAMRequest } from "../../api/types.ts";
import { Cidr } from "../../ipam/index.ts";
import { layoutMap, MAX_GRID_BITS, type MapItem, viewPool, viewRegions } from "./layout.ts";
import { type ClaimObject, type HolderRef, holderKey } from "./objects.ts";
import type { PoolModel } from "./pool-model.ts";
import { compareCidrs, pendingAddresses, poolRegions, REGION_KINDS, type Region } from "./regions.ts";

/** Item kinds by index (an item's `k`): the region kinds, then `mixed` for tiles. */
export const ITEM_KINDS = [...REGION_KINDS, "mixed"] as const;
const TILE_KIND = ITEM_KINDS.length - 1;

export interface RangeSummary {
  key: string;
  kind: string;
  namespace: string;
  name: string;
  family: string;
  state: string;
  message: string;
  ranges: string[];
  exclude: string[];
  gateway: string;
  size: string;
  allocated: string;
  free: string;
  excluded: string;
  cooling: string;
  pending: string;
  /** Prefix of the largest free block ("/24"), "" when nothing is free. */
  largestFree: string;
  largestFreeAddresses: string;
  /** Allocated share in parts per million (for the usage bar). */
  usedPpm: number;
  holders: number;
}

export interface HolderEntry {
  kind: string;
  namespace: string;
  name: string;
  /** The held block, "" for a waiting holder. */
  cidr: string;
  /** allocated | pending removal | waiting */
  state: string;
  /** The holder's own status (request state, claim Ready reason), "" when unknown. */
  status: string;
  message: string;
  /** When the block is too small to draw on its own here: the block to zoom into to see it. */
  zoom?: string;
}

/** A map item as sent: [x, y, w, h, kind index, holder index or -1, block text, detail]. */
export type EncodedItem = [number, number, number, number, number, number, string, string | TileDetail];

export interface TileDetail {
  /** Addresses per region kind, exact decimal. */
  counts: Record<string, string>;
  regions: number;
  blocks: number;
}

export interface RangeView {
  range: RangeSummary;
  /** The block shown, "" for the whole pool; the block "zoom out" goes to ("" = whole pool). */
  view: string;
  parent: string | undefined;
  kinds: readonly string[];
  grid: { width: number; height: number; cellSize: string; usedCells: number; total: string };
  items: EncodedItem[];
  holders: HolderEntry[];
  /** Records the map cannot place (overlaps, junk), and why. */
  rejected: { name: string; cidr: string; reason: string }[];
}

export interface HolderObjects {
  /** Requests by `namespace/name`. */
  requests: ReadonlyMap<string, IPAMRequest>;
  /** Claims by `namespace/name`. */
  claims: ReadonlyMap<string, ClaimObject>;
  /** Requests and claims that name this range (for the waiting ones). */
  waiting: readonly HolderRef[];
}

function familyText(model: PoolModel): string {
  return model.family === 4 ? "IPv4" : model.family === 6 ? "IPv6" : "-";
}

/** A range's line in the list: exact counts from the engine's usage, no region list needed. */
export function rangeSummary(model: PoolModel): RangeSummary {
  const usage = model.allocator?.usage();
  const size = usage?.total ?? 0n;
  const used = usage?.allocated ?? 0n;
  const width = model.family === 6 ? 128 : 32;
  return {
    key: model.key,
    kind: model.kind,
    namespace: model.namespace,
    name: model.name,
    family: familyText(model),
    state: model.state,
    message: model.invalid ?? model.message,
    ranges: model.ranges,
    exclude: model.exclude,
    gateway: model.gateway?.addressString() ?? "",
    size: size.toString(),
    allocated: used.toString(),
    free: (usage?.free ?? 0n).toString(),
    excluded: (usage?.excluded ?? 0n).toString(),
    cooling: (usage?.cooling ?? 0n).toString(),
    pending: (model.allocator ? pendingAddresses(model.allocator) : 0n).toString(),
    largestFree: usage?.largestFree !== undefined ? `/${usage.largestFree}` : "",
    largestFreeAddresses:
      usage?.largestFree !== undefined ? (1n << BigInt(width - usage.largestFree)).toString() : "0",
    usedPpm: size === 0n ? 0 : Number((used * 1_000_000n) / size),
    holders: model.held.length,
  };
}

function regionsOf(model: PoolModel): Region[] {
  return model.allocator ? poolRegions(model.allocator, model.gateway) : [];
}

function holderStatus(
  holder: HolderRef | undefined,
  objects: HolderObjects,
): { status: string; message: string } {
  if (!holder) return { status: "", message: "" };
  const key = `${holder.namespace}/${holder.name}`;
  if (holder.kind === "IPAMRequest") {
    const request = objects.requests.get(key);
    return { status: request?.status?.state ?? "", message: request?.status?.message ?? "" };
  }
  const ready = objects.claims.get(key)?.status?.conditions?.find((c) => c.type === "Ready");
  return {
    status: ready ? `${ready.status === "True" ? "Ready" : ready.reason}` : "",
    message: ready?.message ?? "",
  };
}

/** The holders of the range: held blocks ascending, then the waiting ones. */
export function holderEntries(model: PoolModel, objects: HolderObjects): HolderEntry[] {
  const pending = new Set(
    [...(model.allocator?.pendingRemovals() ?? []), ...(model.allocator?.excludedAllocations() ?? [])].map(
      String,
    ),
  );
  const held = [...model.held].sort((a, b) => compareCidrs(a.cidr, b.cidr));
  const holding = new Set<string>();
  const entries: HolderEntry[] = held.map((record) => {
    if (record.holder) holding.add(holderKey(record.holder));
    return {
      kind: record.holder?.kind ?? "",
      namespace: record.holder?.namespace ?? "",
      name: record.holder?.name ?? `(record ${record.name})`,
      cidr: record.cidr.toString(),
      state: pending.has(record.cidr.toString()) ? "pending removal" : "allocated",
      ...holderStatus(record.holder, objects),
    };
  });
  for (const holder of objects.waiting) {
    if (holding.has(holderKey(holder))) continue;
    entries.push({ ...holder, cidr: "", state: "waiting", ...holderStatus(holder, objects) });
  }
  return entries;
}

/** The view's block: undefined for the whole pool; an error message when it cannot be shown. */
export function parseViewBlock(model: PoolModel, text: string | undefined): Cidr | undefined | string {
  if (!text) return undefined;
  const view = Cidr.tryParse(text);
  if (!view || (model.family !== undefined && view.family !== model.family)) {
    return `invalid block "${text}": use a CIDR of the range's family (${familyText(model)})`;
  }
  if (viewPool(model.allocator?.blocks() ?? [], view).length === 0) {
    return `block ${view} is not part of ${model.kind} ${model.key}`;
  }
  return view;
}

/** Zooming out: 4 prefix bits up, or the whole pool once that covers a pool block. */
function parentOf(model: PoolModel, view: Cidr | undefined): string | undefined {
  if (!view) return undefined;
  const parent = Cidr.of(view.family, view.start, Math.max(0, view.prefix - 4));
  const pool = model.allocator?.blocks() ?? [];
  return pool.some((block) => block.contains(parent) && !block.equals(parent)) ? parent.toString() : "";
}

function encodeItem(item: MapItem, holderOf: (block: string) => number): EncodedItem {
  if (item.type === "region") {
    const { region } = item;
    const block = region.block?.toString() ?? "";
    const holder = block ? holderOf(block) : -1;
    let detail = "";
    if (region.kind === "cooling" && region.until !== undefined)
      detail = new Date(region.until).toISOString();
    else if (block && block !== region.cidr.toString()) detail = block;
    return [
      item.x,
      item.y,
      item.w,
      item.h,
      REGION_KINDS.indexOf(region.kind),
      holder,
      region.cidr.toString(),
      detail,
    ];
  }
  const counts: Record<string, string> = {};
  for (const [kind, value] of Object.entries(item.counts)) if (value > 0n) counts[kind] = value.toString();
  const holders = new Set([...item.blocks].map(holderOf));
  const holder = holders.size === 1 ? [...holders][0]! : -1;
  const detail: TileDetail = { counts, regions: item.regions, blocks: item.blocks.size };
  return [item.x, item.y, item.w, item.h, TILE_KIND, holder, item.cover.toString(), detail];
}

/**
 * Holders whose block is smaller than a cell are drawn summed up: name the block that shows them on
 * their own (2^16 times their size: one cell of a full grid).
 */
function addZoomTargets(holders: HolderEntry[], cellSize: bigint): void {
  if (cellSize === 1n) return;
  for (const holder of holders) {
    const block = Cidr.tryParse(holder.cidr);
    if (!block || block.size >= cellSize) continue;
    holder.zoom = Cidr.of(block.family, block.start, Math.max(0, block.prefix - MAX_GRID_BITS)).toString();
  }
}

/** One range's map (whole pool, or `view` inside it) with its holders. */
export function rangeView(model: PoolModel, objects: HolderObjects, view?: Cidr): RangeView {
  const regions = regionsOf(model);
  const holders = holderEntries(model, objects);
  const byBlock = new Map<string, number>();
  holders.forEach((holder, index) => {
    if (holder.cidr) byBlock.set(holder.cidr, index);
  });
  const pool = viewPool(model.allocator?.blocks() ?? [], view);
  const layout = layoutMap(pool, viewRegions(regions, view));
  addZoomTargets(holders, layout.cellSize);
  return {
    range: rangeSummary(model),
    view: view?.toString() ?? "",
    parent: parentOf(model, view),
    kinds: ITEM_KINDS,
    grid: {
      width: layout.width,
      height: layout.height,
      cellSize: layout.cellSize.toString(),
      usedCells: layout.usedCells,
      total: layout.total.toString(),
    },
    items: layout.items.map((item) => encodeItem(item, (block) => byBlock.get(block) ?? -1)),
    holders,
    rejected: model.rejected,
  };
}
