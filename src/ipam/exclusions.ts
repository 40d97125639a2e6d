import { type Family, familyName } from "./address.ts";
import { Cidr } from "./cidr.ts";
import { IpamError } from "./errors.ts";
import { parseEntry } from "./pool.ts";
import { mergeSpans, overlapsAny, type Span } from "./spans.ts";

/** Addresses never handed out (§7 `exclude` entries and the `gateway`). */
export interface Exclusion {
  /** The entry as the user wrote it; error messages name it. */
  entry: string;
  family: Family;
  /** First and last address (inclusive, exact). */
  first: bigint;
  last: bigint;
}

/**
 * Parses `spec.exclude` (§7): entries in the §2 grammar of the range's family. `family` undefined
 * (an empty range) only requires the entries to agree with each other.
 */
export function parseExclusions(entries: readonly string[], family: Family | undefined): Exclusion[] {
  if (!Array.isArray(entries)) throw new IpamError("InvalidExclusion", "invalid exclude entries: not a list");
  const result: Exclusion[] = [];
  let expected = family;
  for (const entry of entries) {
    let exclusion: Exclusion;
    try {
      exclusion = { entry, ...parseEntry(entry, "exclude entry") };
    } catch (error) {
      if (error instanceof IpamError) throw new IpamError("InvalidExclusion", error.message);
      throw error;
    }
    expected ??= exclusion.family;
    checkExclusionFamily(exclusion, expected);
    result.push(exclusion);
  }
  return result;
}

/** Parses `spec.gateway` (§7): one IP of the range's family, excluded like an `exclude` entry. */
export function parseGateway(text: string, family: Family | undefined): Exclusion {
  const ip = Cidr.tryParseIP(text);
  if (ip === undefined) throw new IpamError("InvalidExclusion", `invalid gateway "${String(text)}"`);
  if (family !== undefined && ip.family !== family) {
    throw new IpamError(
      "InvalidExclusion",
      `invalid gateway "${text}": ${familyName(ip.family)} but the range is ${familyName(family)}`,
    );
  }
  return { entry: text, family: ip.family, first: ip.start, last: ip.start };
}

export function checkExclusionFamily(exclusion: Exclusion, family: Family): void {
  if (exclusion.family !== family) {
    throw new IpamError(
      "InvalidExclusion",
      `invalid exclude entry "${exclusion.entry}": ${familyName(exclusion.family)} but the range is ${familyName(family)}`,
    );
  }
}

/** The exclusions of a range, merged for overlap queries, the entries kept for messages. */
export class ExclusionSet {
  readonly entries: readonly Exclusion[];
  /** Sorted, merged. */
  readonly spans: readonly Span[];

  constructor(family: Family, entries: readonly Exclusion[]) {
    if (!Array.isArray(entries)) throw new IpamError("InvalidExclusion", "invalid exclusions: not a list");
    for (const exclusion of entries) checkExclusionFamily(exclusion, family);
    this.entries = entries.map((exclusion) => ({ ...exclusion }));
    this.spans = mergeSpans(this.entries);
  }

  get empty(): boolean {
    return this.spans.length === 0;
  }

  overlaps(span: Span): boolean {
    return overlapsAny(this.spans, span);
  }

  /** The lowest entry overlapping `span` (for messages), if any. */
  firstOverlapping(span: Span): Exclusion | undefined {
    let found: Exclusion | undefined;
    for (const exclusion of this.entries) {
      if (exclusion.first > span.last || exclusion.last < span.first) continue;
      if (found === undefined || exclusion.first < found.first) found = exclusion;
    }
    return found;
  }
}
