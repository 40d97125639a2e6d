import { type Family, familyName, parseAddress, widthOf } from "./address.ts";
import { Cidr } from "./cidr.ts";
import { IpamError } from "./errors.ts";

export type Mode = "FirstMatch" | "RoundRobin";

export interface Pool {
  /** Undefined only when there are no entries. */
  family: Family | undefined;
  /** Canonical minimal cover of the union of the entries, ascending. */
  blocks: Cidr[];
}

export interface Interval {
  family: Family;
  first: bigint;
  last: bigint;
}

/** One §2 entry; `what` names the kind of entry in messages (`invalid <what> "x"`). */
export function parseEntry(entry: string, what = "ip range"): Interval {
  const invalid = (): IpamError => new IpamError("InvalidRange", `invalid ${what} "${String(entry)}"`);
  if (typeof entry !== "string") throw invalid();
  if (entry.includes("/")) {
    const cidr = Cidr.tryParse(entry);
    if (cidr === undefined) throw invalid();
    return { family: cidr.family, first: cidr.start, last: cidr.end };
  }
  const dash = entry.indexOf("-");
  if (dash >= 0) {
    const startText = entry.slice(0, dash);
    const endText = entry.slice(dash + 1);
    const start = parseAddress(startText);
    const end = parseAddress(endText);
    if (start === undefined || end === undefined) throw invalid();
    if (start.family !== end.family) {
      throw new IpamError(
        "InvalidRange",
        `invalid ${what} "${entry}": start and end ip have different version`,
      );
    }
    const first = Cidr.fromKey(start.family, start.key, widthOf(start.family)).start;
    const last = Cidr.fromKey(end.family, end.key, widthOf(end.family)).start;
    if (last < first) {
      throw new IpamError("InvalidRange", `invalid ${what} "${entry}": end of range before start`);
    }
    return { family: start.family, first, last };
  }
  const ip = Cidr.tryParseIP(entry);
  if (ip === undefined) throw invalid();
  return { family: ip.family, first: ip.start, last: ip.start };
}

function bitLength(value: bigint): number {
  return value === 0n ? 0 : value.toString(2).length;
}

function trailingZeros(value: bigint, width: number): number {
  if (value === 0n) return width;
  let zeros = 0;
  while (((value >> BigInt(zeros)) & 1n) === 0n) zeros++;
  return zeros;
}

/** The fewest aligned blocks covering `first..last` (inclusive), ascending. */
export function coverInterval(family: Family, first: bigint, last: bigint): Cidr[] {
  const width = widthOf(family);
  const blocks: Cidr[] = [];
  let start = first;
  while (start <= last) {
    const hostBits = Math.min(trailingZeros(start, width), bitLength(last - start + 1n) - 1);
    blocks.push(Cidr.of(family, start, width - hostBits));
    start += 1n << BigInt(hostBits);
  }
  return blocks;
}

/** The canonical minimal CIDR cover of the union of blocks of one family, ascending. */
export function canonicalBlocks(family: Family, blocks: Iterable<Cidr>): Cidr[] {
  const intervals: Interval[] = [];
  for (const block of blocks) {
    if (block.family !== family) {
      throw new IpamError(
        "MixedFamilies",
        `invalid ip ranges: ${block} is ${familyName(block.family)} but the range is ${familyName(family)}: one range holds one family`,
      );
    }
    intervals.push({ family, first: block.start, last: block.end });
  }
  return coverIntervals(family, intervals);
}

function coverIntervals(family: Family, intervals: Interval[]): Cidr[] {
  intervals.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const blocks: Cidr[] = [];
  let current: Interval | undefined;
  for (const interval of intervals) {
    if (current !== undefined && interval.first <= current.last + 1n) {
      if (interval.last > current.last) current.last = interval.last;
      continue;
    }
    if (current !== undefined) blocks.push(...coverInterval(family, current.first, current.last));
    current = { ...interval };
  }
  if (current !== undefined) blocks.push(...coverInterval(family, current.first, current.last));
  return blocks;
}

/** Parses `spec.ranges` (§2): CIDRs, inclusive `a-b` ranges and single IPs of one family. */
export function parsePool(entries: readonly string[]): Pool {
  if (!Array.isArray(entries)) throw new IpamError("InvalidRange", "invalid ip ranges: not a list");
  const intervals: Interval[] = [];
  let firstEntry: string | undefined;
  for (const entry of entries) {
    const interval = parseEntry(entry);
    const first = intervals[0];
    if (first !== undefined && first.family !== interval.family) {
      throw new IpamError(
        "MixedFamilies",
        `invalid ip ranges: "${firstEntry}" is ${familyName(first.family)} but "${entry}" is ${familyName(interval.family)}: one range holds one family`,
      );
    }
    if (firstEntry === undefined) firstEntry = entry;
    intervals.push(interval);
  }
  const family = intervals[0]?.family;
  if (family === undefined) return { family: undefined, blocks: [] };
  return { family, blocks: coverIntervals(family, intervals) };
}

export function validateMode(mode: string | undefined): Mode {
  if (mode === undefined || mode === "" || mode === "FirstMatch") return "FirstMatch";
  if (mode === "RoundRobin") return "RoundRobin";
  throw new IpamError("InvalidMode", `invalid mode "${String(mode)}": use FirstMatch or RoundRobin`);
}

/** Returns the chunk size (0 = none). `family` undefined (empty range) checks against IPv6. */
export function validateChunkSize(chunkSize: number | undefined, family: Family | undefined): number {
  if (chunkSize === undefined || chunkSize === null) return 0;
  if (typeof chunkSize !== "number" || !Number.isInteger(chunkSize) || chunkSize < 0) {
    throw new IpamError("InvalidSize", `invalid chunk size ${String(chunkSize)}`);
  }
  const width = widthOf(family ?? 6);
  if (chunkSize > width) {
    throw new IpamError("InvalidSize", `chunk size ${chunkSize} too large: network ${width}`);
  }
  return chunkSize;
}
