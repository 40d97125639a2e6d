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

/** Lays out `regions`, which must tile `pool` (see poolRegions, viewPool, viewRegions). */
export function layoutMap(pool: readonly Cidr[], regions: readonly Region[]): MapLayout {
  const { placed, total } = pack(pool);
  const bits = bitLength(total - 1n);
  const gridBits = Math.min(bits, MAX_GRID_BITS);
  const cellBits = bits - gridBits;
  const cellSize = 1n << BigInt(cellBits);
  const byAddress = [...placed].sort((a, b) => compareCidrs(a.block, b.block));
  const items: MapItem[] = [];
  const tiles = new Map<number, TileItem>();
  const tileBounds = new Map<number, { first: bigint; last: bigint }>();
  let p = 0;
  for (const region of [...regions].sort((a, b) => compareCidrs(a.cidr, b.cidr))) {
    while (p < byAddress.length && !byAddress[p]!.block.contains(region.cidr)) p++;
    const home = byAddress[p];
    if (!home) throw new Error(`region ${region.cidr} is not inside the pool`);
    const virtual = home.offset + (region.cidr.start - home.block.start);
    const index = Number(virtual >> BigInt(cellBits));
    const hostBits = region.cidr.width - region.cidr.prefix;
    if (hostBits >= cellBits) {
      items.push({ type: "region", region, ...blockRect(index, 2 ** (hostBits - cellBits)) });
      continue;
    }
    let tile = tiles.get(index);
    if (!tile) {
      tile = {
        type: "tile",
        ...blockRect(index, 1),
        cover: region.cidr,
        counts: emptyCounts(),
        regions: 0,
        blocks: new Set(),
      };
      tiles.set(index, tile);
      tileBounds.set(index, { first: region.cidr.start, last: region.cidr.end });
      items.push(tile);
    }
    tile.counts[region.kind] += region.cidr.size;
    tile.regions++;
    if (region.block) tile.blocks.add(region.block.toString());
    const bounds = tileBounds.get(index)!;
    if (region.cidr.start < bounds.first) bounds.first = region.cidr.start;
    if (region.cidr.end > bounds.last) bounds.last = region.cidr.end;
  }
  for (const [index, tile] of tiles) {
    const { first, last } = tileBounds.get(index)!;
    tile.cover = coverOf(tile.cover.family, tile.cover.width, first, last);
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
