// The address map's geometry: the pool drawn to scale on a grid of cells in "nested squares" (Z-order)
// layout. Pool blocks are packed largest first into one virtual address space (each lands aligned, so
// the packing has no gaps); in Z-order every aligned block of 4^k cells is a square and of 2·4^k cells
// a 2:1 rectangle, so each region is one rectangle. A grid has at most 2^MAX_GRID_BITS cells; regions
// smaller than a cell are summed up into that cell (a tile), never enumerated.

import { Cidr } from "../../ipam/index.ts";
import { compareCidrs, emptyCounts, type KindCounts, type Region, type RegionKind } from "./regions.ts";

/** 2^16 cells: 256 × 256. */
export const MAX_GRID_BITS = 16;

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** One region drawn as it is. */
export interface RegionItem extends Rect {
  type: "region";
  region: Region;
}

/** Regions smaller than a cell, summed up in their cell. */
export interface TileItem extends Rect {
  type: "tile";
  /** The smallest block that holds every region of the tile (zooming into it shows them). */
  cover: Cidr;
  counts: KindCounts;
  regions: number;
  /** The held blocks in the tile (allocated or pending), by their text. */
  blocks: Set<string>;
}

export type MapItem = RegionItem | TileItem;

export interface MapLayout {
  /** Grid size in cells; width ≥ height. */
  width: number;
  height: number;
  /** Addresses per cell (a power of two). */
  cellSize: bigint;
  /** Cells that hold pool space (the rest of the grid is outside the pool). */
  usedCells: number;
  /** Total pool addresses on the map. */
  total: bigint;
  /** Ascending by address within the packing order (largest pool block first). */
  items: MapItem[];
}

function bitLength(value: bigint): number {
  return value <= 0n ? 0 : value.toString(2).length;
}

/** The (x, y) cell of Z-order index `index`: even bits give x, odd bits give y. */
export function cellXY(index: number): { x: number; y: number } {
  let x = 0;
  let y = 0;
  for (let bit = 0, rest = index; rest > 0; bit++, rest = Math.floor(rest / 4)) {
    x += (rest & 1) << bit;
    y += ((rest >> 1) & 1) << bit;
  }
  return { x, y };
}

/** The rectangle of `cells` (a power of two) aligned cells starting at Z-order index `index`. */
export function blockRect(index: number, cells: number): Rect {
  const k = Math.round(Math.log2(cells));
  const { x, y } = cellXY(index);
  return { x, y, w: 2 ** Math.ceil(k / 2), h: 2 ** Math.floor(k / 2) };
}

/** The pool on the map: `blocks` limited to `view` (an aligned block) when it is given. */
export function viewPool(pool: readonly Cidr[], view?: Cidr): Cidr[] {
  if (!view) return [...pool];
  const inside = pool.filter((block) => view.contains(block));
  const holder = pool.find((block) => block.contains(view) && !view.equals(block));
  return holder ? [view] : inside;
}

/** `regions` limited to `view`: a region larger than the view becomes the view itself. */
export function viewRegions(regions: readonly Region[], view?: Cidr): Region[] {
  if (!view) return [...regions];
  const out: Region[] = [];
  for (const region of regions) {
    if (view.contains(region.cidr)) out.push(region);
    else if (region.cidr.contains(view)) out.push({ ...region, cidr: view });
  }
  return out;
}

/** Smallest aligned block holding `first`..`last`. */
function coverOf(family: 4 | 6, width: number, first: bigint, last: bigint): Cidr {
  const differing = bitLength(first ^ last);
  return Cidr.of(family, first, width - differing);
}

interface Placed {
  block: Cidr;
  offset: bigint;
}

/** Virtual offsets: pool blocks largest first (then by address), each aligned to its own size. */
function pack(pool: readonly Cidr[]): { placed: Placed[]; total: bigint } {
  const order = [...pool].sort((a, b) => a.prefix - b.prefix || compareCidrs(a, b));
  let total = 0n;
  const placed: Placed[] = [];
  for (const block of order) {
    placed.push({ block, offset: total });
    total += block.size;
  }
  return { placed, total };
}

/**
 * The cell of a region's first address. IPv4 stays in plain numbers (exact below 2^53); IPv6 needs
 * BigInt. Allocation-free for IPv4, which matters at 100,000 regions.
 */
function cellIndexer(cellBits: number): (region: Cidr, home: Placed) => number {
  const shift = BigInt(cellBits);
  const cellSize = 2 ** cellBits;
  return (region, home) => {
    if (typeof region.startKey === "number") {
      const virtual = Number(home.offset) + (region.startKey - (home.block.startKey as number));
      return Math.floor(virtual / cellSize);
    }
    return Number((home.offset + (region.start - home.block.start)) >> shift);
  };
}

const SIZES = Array.from({ length: 129 }, (_, bits) => 1n << BigInt(bits));

/** Lays out `regions`, which must tile `pool`, ascending by address (see poolRegions, viewPool, viewRegions). */
export function layoutMap(pool: readonly Cidr[], regions: readonly Region[]): MapLayout {
  const { placed, total } = pack(pool);
  const bits = bitLength(total - 1n);
  const gridBits = Math.min(bits, MAX_GRID_BITS);
  const cellBits = bits - gridBits;
  const cellSize = 1n << BigInt(cellBits);
  const cellOf = cellIndexer(cellBits);
  const byAddress = [...placed].sort((a, b) => compareCidrs(a.block, b.block));
  const items: MapItem[] = [];
  const tiles = new Map<number, TileItem>();
  /** The first and the last region of each tile (regions come in address order). */
  const tileEnds = new Map<TileItem, { first: Cidr; last: Cidr }>();
  let p = 0;
  for (const region of regions) {
    const cidr = region.cidr;
    // Aligned blocks nest or are apart: the last pool block starting at or before the region holds it.
    while (p + 1 < byAddress.length && byAddress[p + 1]!.block.startKey <= cidr.startKey) p++;
    const home = byAddress[p];
    if (!home || cidr.startKey < home.block.startKey || cidr.prefix < home.block.prefix) {
      throw new Error(`region ${cidr} is not inside the pool (or regions out of order)`);
    }
    const index = cellOf(cidr, home);
    const hostBits = cidr.width - cidr.prefix;
    if (hostBits >= cellBits) {
      items.push({ type: "region", region, ...blockRect(index, 2 ** (hostBits - cellBits)) });
      continue;
    }
    let tile = tiles.get(index);
    if (!tile) {
      tile = {
        type: "tile",
        ...blockRect(index, 1),
        cover: cidr,
        counts: emptyCounts(),
        regions: 0,
        blocks: new Set(),
      };
      tiles.set(index, tile);
      tileEnds.set(tile, { first: cidr, last: cidr });
      items.push(tile);
    }
    tile.counts[region.kind] += SIZES[hostBits]!;
    tile.regions++;
    if (region.block) tile.blocks.add(region.block.toString());
    tileEnds.get(tile)!.last = cidr;
  }
  for (const [tile, { first, last }] of tileEnds) {
    tile.cover = coverOf(first.family, first.width, first.start, last.end);
  }
  const usedCells = Number((total + cellSize - 1n) >> BigInt(cellBits));
  return {
    width: 2 ** Math.ceil(gridBits / 2),
    height: 2 ** Math.floor(gridBits / 2),
    cellSize,
    usedCells,
    total,
    items,
  };
}

/** The kind that holds most addresses of a tile (ties: the first in `kinds` order). */
export function dominantKind(counts: KindCounts, kinds: readonly RegionKind[]): RegionKind {
  let best = kinds[0]!;
  for (const kind of kinds) if (counts[kind] > counts[best]) best = kind;
  return best;
}
