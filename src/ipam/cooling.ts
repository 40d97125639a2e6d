import { type Family, familyName } from "./address.ts";
import { Cidr } from "./cidr.ts";
import { IpamError } from "./errors.ts";

/** A released block kept out of automatic allocation until `until` (ms since the epoch). */
export interface CoolingBlock {
  cidr: Cidr;
  until: number;
}

const COOLING_FORM = "use <cidr>@<ISO time>";
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$/;
/** 9999-12-31T23:59:59.999Z: every end time prints as a four-digit-year ISO time. */
const LAST_TIME = 253402300799999;

/** Checks a time given by the caller (ms since the epoch, an integer a `Date` can hold). */
export function checkTime(time: number, what: string): number {
  if (typeof time !== "number" || !Number.isInteger(time) || time < 0 || time > LAST_TIME) {
    throw new IpamError(
      "InvalidCooling",
      `invalid ${what} ${String(time)}: use milliseconds since the epoch`,
    );
  }
  return time;
}

export function isoTime(time: number): string {
  return new Date(time).toISOString();
}

/** Persistent form: `"<cidr>@<ISO time>"`, e.g. `"10.0.0.5/32@2026-12-01T07:00:00.000Z"`. */
export function formatCooling(block: CoolingBlock): string {
  return `${block.cidr}@${isoTime(block.until)}`;
}

/** Parses `formatCooling` entries of the range's family; junk is rejected with `InvalidCooling`. */
export function parseCooling(entries: readonly string[], family: Family): CoolingBlock[] {
  if (!Array.isArray(entries)) throw new IpamError("InvalidCooling", "invalid cooling entries: not a list");
  return entries.map((entry) => {
    const invalid = (why: string): IpamError =>
      new IpamError("InvalidCooling", `invalid cooling entry "${String(entry)}": ${why}`);
    if (typeof entry !== "string") throw invalid(COOLING_FORM);
    const at = entry.indexOf("@");
    const cidr = Cidr.tryParse(entry.slice(0, Math.max(at, 0)));
    const timeText = entry.slice(at + 1);
    if (at < 0 || cidr === undefined || !ISO_TIME.test(timeText)) throw invalid(COOLING_FORM);
    const until = Date.parse(timeText);
    // Date.parse accepts impossible dates (February 30th); the round trip does not.
    if (Number.isNaN(until) || isoTime(until).slice(0, 19) !== timeText.slice(0, 19)) {
      throw invalid(`${timeText} is not a valid time`);
    }
    if (cidr.family !== family) {
      throw invalid(`${familyName(cidr.family)} but the range is ${familyName(family)}`);
    }
    return { cidr, until };
  });
}

/**
 * `parseCooling` entry by entry, for a status.cooling a user may have edited: the blocks of the good
 * entries, and what is wrong with each bad one (a bad entry must cost only its own cooldown).
 */
export function parseCoolingEntries(
  entries: unknown,
  family: Family,
): { blocks: CoolingBlock[]; errors: IpamError[] } {
  if (entries === undefined) return { blocks: [], errors: [] };
  if (!Array.isArray(entries)) {
    return { blocks: [], errors: [new IpamError("InvalidCooling", "invalid cooling entries: not a list")] };
  }
  const blocks: CoolingBlock[] = [];
  const errors: IpamError[] = [];
  for (const entry of entries) {
    try {
      blocks.push(...parseCooling([entry], family));
    } catch (err) {
      if (!(err instanceof IpamError)) throw err;
      errors.push(err);
    }
  }
  return { blocks, errors };
}

export function blockKey(cidr: Cidr): string {
  return `${String(cidr.startKey)}/${cidr.prefix}`;
}

function compareCooling(a: CoolingBlock, b: CoolingBlock): number {
  if (a.until !== b.until) return a.until - b.until;
  if (a.cidr.startKey !== b.cidr.startKey) return a.cidr.startKey < b.cidr.startKey ? -1 : 1;
  return a.cidr.prefix - b.cidr.prefix;
}

/**
 * The cooling blocks of an allocator, by block and in order of end time (then address), so the
 * due ones are at the front. The blocks are disjoint; the allocator holds them in its buddy tree.
 */
export class CoolingList {
  private readonly byBlock = new Map<string, CoolingBlock>();
  /** Ascending by `compareCooling`. */
  private readonly ordered: CoolingBlock[] = [];
  /** Addresses cooling. */
  addresses = 0n;

  get size(): number {
    return this.byBlock.size;
  }

  get(cidr: Cidr): CoolingBlock | undefined {
    return this.byBlock.get(blockKey(cidr));
  }

  add(block: CoolingBlock): void {
    this.byBlock.set(blockKey(block.cidr), block);
    this.addresses += block.cidr.size;
    const ordered = this.ordered;
    let index = ordered.length;
    // End times mostly grow with each release, so the place is usually at the end.
    if (index > 0 && compareCooling(ordered[index - 1] as CoolingBlock, block) > 0) {
      let low = 0;
      while (low < index) {
        const mid = (low + index) >>> 1;
        if (compareCooling(ordered[mid] as CoolingBlock, block) < 0) low = mid + 1;
        else index = mid;
      }
    }
    ordered.splice(index, 0, block);
  }

  remove(block: CoolingBlock): void {
    this.byBlock.delete(blockKey(block.cidr));
    this.addresses -= block.cidr.size;
    const index = this.ordered.indexOf(block);
    if (index >= 0) this.ordered.splice(index, 1);
  }

  /** The earliest block, if any. */
  first(): CoolingBlock | undefined {
    return this.ordered[0];
  }

  /** All blocks in order of end time (a copy). */
  byTime(): CoolingBlock[] {
    return [...this.ordered];
  }

  /** Blocks overlapping `cidr`. */
  overlapping(cidr: Cidr): CoolingBlock[] {
    return this.ordered.filter((block) => block.cidr.overlaps(cidr));
  }

  clear(): CoolingBlock[] {
    const all = [...this.ordered];
    this.byBlock.clear();
    this.ordered.length = 0;
    this.addresses = 0n;
    return all;
  }
}
