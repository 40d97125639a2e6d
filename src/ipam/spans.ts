import type { Family } from "./address.ts";
import type { Cidr } from "./cidr.ts";
import { coverInterval } from "./pool.ts";

/** An inclusive address interval (exact). */
export interface Span {
  first: bigint;
  last: bigint;
}

export function spanOf(block: Cidr): Span {
  const first = block.start;
  return { first, last: first + block.size - 1n };
}

/** Sorted, with overlapping and adjacent spans merged. */
export function mergeSpans(spans: readonly Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: Span[] = [];
  for (const span of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && span.first <= last.last + 1n) {
      if (span.last > last.last) last.last = span.last;
    } else {
      merged.push({ first: span.first, last: span.last });
    }
  }
  return merged;
}

/** Index of the first of the merged `spans` that ends at or after `address`. */
function firstEndingAtOrAfter(spans: readonly Span[], address: bigint): number {
  let low = 0;
  let high = spans.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((spans[mid] as Span).last < address) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Whether `span` overlaps any of the merged `spans`. */
export function overlapsAny(spans: readonly Span[], span: Span): boolean {
  const candidate = spans[firstEndingAtOrAfter(spans, span.first)];
  return candidate !== undefined && candidate.first <= span.last;
}

/** The parts of `span` inside the merged `spans`, ascending. */
export function intersect(span: Span, spans: readonly Span[]): Span[] {
  const result: Span[] = [];
  for (let i = firstEndingAtOrAfter(spans, span.first); i < spans.length; i++) {
    const other = spans[i] as Span;
    if (other.first > span.last) break;
    result.push({
      first: later(other.first, span.first),
      last: earlier(other.last, span.last),
    });
  }
  return result;
}

/** The parts of `span` outside the merged `spans`, ascending. */
export function subtract(span: Span, spans: readonly Span[]): Span[] {
  const result: Span[] = [];
  let next = span.first;
  for (const inside of intersect(span, spans)) {
    if (inside.first > next) result.push({ first: next, last: inside.first - 1n });
    next = inside.last + 1n;
  }
  if (next <= span.last) result.push({ first: next, last: span.last });
  return result;
}

/** The fewest aligned blocks covering the spans (each span covered on its own), ascending. */
export function coverSpans(family: Family, spans: readonly Span[]): Cidr[] {
  const blocks: Cidr[] = [];
  for (const span of spans) blocks.push(...coverInterval(family, span.first, span.last));
  return blocks;
}

// Math.max and Math.min take no BigInts.
function later(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function earlier(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
