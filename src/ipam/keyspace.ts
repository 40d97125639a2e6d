/**
 * Block start addresses in the allocator's key form, and the arithmetic on them. Three forms:
 *
 * - IPv4: the address with its top bit flipped, as a signed 32-bit integer. Order is address order,
 *   every key is a small integer (no heap number per entry), buddy arithmetic is 32-bit XOR/AND.
 * - IPv6 relative to the pool's hull (the smallest aligned block holding the pool and every
 *   allocation): the offset from the hull's start as a double. A block of prefix q has its offset's
 *   set bits between bit 127 − H and bit 128 − q, so it is exact while q − H ≤ 53; the allocator
 *   uses this form only then (e.g. /64 blocks of a /32 pool). Numbers keep keys out of the GC's way.
 * - IPv6 in general: strings of 8 UTF-16 code units, one per 16-bit group. Fixed width, so string
 *   order is address order; BigInt keys would hash by their low bits only.
 */
import { type AddressKey, bigIntToKey, type Family, keyToBigInt } from "./address.ts";
import { type BlockTable, Float64BlockTable, Int32BlockTable, StringBlockTable } from "./block-table.ts";

export type Key = number | string;

export interface KeySpace {
  readonly family: Family;
  readonly width: number;
  /** Longest prefix this form represents exactly. */
  readonly maxPrefix: number;
  /** Key of a block start, or undefined if this form cannot hold it (outside the hull, too long). */
  keyOf(address: AddressKey, prefix: number): Key | undefined;
  toAddress(key: Key): AddressKey;
  /** The other half of the parent of block `key` at level `prefix` (prefix ≥ 1). */
  buddy(key: Key, prefix: number): Key;
  /** The upper half of block `key` at level `prefix` (prefix < width). */
  upperHalf(key: Key, prefix: number): Key;
  /** Start of the block of level `prefix` that holds `key`. */
  mask(key: Key, prefix: number): Key;
  /** Start of the next block of level `prefix` (key must be aligned); undefined past the top. */
  next(key: Key, prefix: number): Key | undefined;
  /**
   * Key of the first /prefix-aligned address at or after `address`: undefined when there is none
   * in this key space; the lowest key when `address` lies before all of it.
   */
  ceilAligned(address: AddressKey, prefix: number): Key | undefined;
  /**
   * Calls `visit` for the maximal aligned blocks covering `from` up to (excluding) `to`;
   * `to` undefined means the end of the key space.
   */
  coverGap(from: Key, to: Key | undefined, visit: (key: Key, prefix: number) => void): void;
  /** A leaf table sized for about `expected` entries. */
  newTable(expected?: number): BlockTable<Key>;
}

const SIGN = 0x80000000;
const TWO_32 = 4294967296;

/** IPV4_MASK[p] keeps the top p bits; level 0 is handled apart (a shift by 32 is a shift by 0). */
const IPV4_MASK: number[] = [];
for (let prefix = 0; prefix <= 32; prefix++) IPV4_MASK.push(prefix === 0 ? 0 : -1 << (32 - prefix));

export const ipv4Keys: KeySpace = {
  family: 4,
  width: 32,
  maxPrefix: 32,
  keyOf: (address) => ((address as number) ^ SIGN) | 0,
  toAddress: (key) => ((key as number) ^ SIGN) >>> 0,
  buddy: (key, prefix) => (key as number) ^ (1 << (32 - prefix)),
  upperHalf: (key, prefix) => (key as number) ^ (1 << (31 - prefix)),
  // Masking the biased key: bits below 31 are the address bits; bit 31 is inverted, so level 0 is -2^31.
  mask: (key, prefix) => (prefix === 0 ? -SIGN : (key as number) & (IPV4_MASK[prefix] as number)),
  next: (key, prefix) => {
    const next = (key as number) + 2 ** (32 - prefix);
    return next >= SIGN ? undefined : next;
  },
  ceilAligned: (address, prefix) => {
    const size = 2 ** (32 - prefix);
    const aligned = Math.ceil((address as number) / size) * size;
    return aligned >= TWO_32 ? undefined : (aligned ^ SIGN) | 0;
  },
  coverGap: (from, to, visit) => {
    let start = ((from as number) ^ SIGN) >>> 0;
    const end = to === undefined ? TWO_32 : ((to as number) ^ SIGN) >>> 0;
    while (start < end) {
      const alignment = start === 0 ? 32 : 31 - Math.clz32(start & -start);
      const room = Math.floor(Math.log2(end - start));
      const hostBits = Math.min(alignment, room);
      visit((start ^ SIGN) | 0, 32 - hostBits);
      start += 2 ** hostBits;
    }
  },
  newTable: (expected) => new Int32BlockTable(expected) as BlockTable<Key>,
};

const ZERO_UNITS = "\0".repeat(8);

/** Flips bit `bit` (0 = least significant) of an IPv6 address in code-unit form. */
function flipBit(key: string, bit: number): string {
  const unit = 7 - (bit >>> 4);
  return (
    key.slice(0, unit) + String.fromCharCode(key.charCodeAt(unit) ^ (1 << (bit & 15))) + key.slice(unit + 1)
  );
}

/** Clears all but the top `prefix` bits of an IPv6 address in code-unit form. */
function maskUnits(key: string, prefix: number): string {
  const whole = prefix >>> 4;
  const partialBits = prefix & 15;
  if (partialBits === 0) return key.slice(0, whole) + ZERO_UNITS.slice(whole);
  const kept = key.charCodeAt(whole) & (0xffff << (16 - partialBits)) & 0xffff;
  return key.slice(0, whole) + String.fromCharCode(kept) + ZERO_UNITS.slice(whole + 1);
}

/** Adds 2^(128 − prefix) to an address aligned at `prefix`; undefined past the top. */
function nextUnits(key: string, prefix: number): string | undefined {
  if (prefix === 0) return undefined;
  const bit = 128 - prefix;
  let unit = 7 - (bit >>> 4);
  let carry = 1 << (bit & 15);
  let tail = key.slice(unit + 1);
  while (unit >= 0) {
    const sum = key.charCodeAt(unit) + carry;
    tail = String.fromCharCode(sum & 0xffff) + tail;
    if (sum <= 0xffff) return key.slice(0, unit) + tail;
    carry = 1;
    unit--;
  }
  return undefined;
}

function trailingZeroBits(key: string): number {
  for (let unit = 7; unit >= 0; unit--) {
    const value = key.charCodeAt(unit);
    if (value !== 0) return (7 - unit) * 16 + 31 - Math.clz32(value & -value);
  }
  return 128;
}

/** floor(log2(to − from)) for from < to; `to` undefined is 2^128. */
function floorLog2Difference(from: string, to: string | undefined): number {
  let borrow = 0;
  let highest = -1;
  for (let unit = 7; unit >= 0; unit--) {
    let difference = (to === undefined ? 0 : to.charCodeAt(unit)) - from.charCodeAt(unit) - borrow;
    borrow = difference < 0 ? 1 : 0;
    difference &= 0xffff;
    if (difference !== 0) highest = (7 - unit) * 16 + 31 - Math.clz32(difference);
  }
  // 2^128 − from has bit 128 set only when from is 0.
  return to === undefined && highest < 0 ? 128 : highest;
}

export const ipv6Keys: KeySpace = {
  family: 6,
  width: 128,
  maxPrefix: 128,
  keyOf: (address) => address as string,
  toAddress: (key) => key as string,
  buddy: (key, prefix) => flipBit(key as string, 128 - prefix),
  upperHalf: (key, prefix) => flipBit(key as string, 127 - prefix),
  mask: (key, prefix) => maskUnits(key as string, prefix),
  next: (key, prefix) => nextUnits(key as string, prefix),
  ceilAligned: (address, prefix) => {
    const masked = maskUnits(address as string, prefix);
    return masked === address ? masked : nextUnits(masked, prefix);
  },
  coverGap: (from, to, visit) => {
    let start: string | undefined = from as string;
    const end = to as string | undefined;
    while (start !== undefined && (end === undefined || start < end)) {
      const hostBits = Math.min(trailingZeroBits(start), floorLog2Difference(start, end));
      visit(start, 128 - hostBits);
      start = nextUnits(start, 128 - hostBits);
    }
  },
  newTable: (expected) => new StringBlockTable(expected) as BlockTable<Key>,
};

/** POWERS[h] = 2^h, exact. */
const POWERS: number[] = [];
for (let bit = 0; bit <= 128; bit++) POWERS.push(2 ** bit);

function power(bit: number): number {
  return POWERS[bit] as number;
}

const scratchDouble = new Float64Array(1);
const scratchHalves = new Int32Array(scratchDouble.buffer);
/** Index of the half holding sign, exponent and the top of the mantissa. */
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** Largest h with 2^h ≤ value, for an integer value ≥ 1: the exponent field of the double. */
function floorLog2(value: number): number {
  scratchDouble[0] = value;
  return (((scratchHalves[HIGH] as number) >>> 20) & 0x7ff) - 1023;
}

/** Trailing zero bits of an integer value ≥ 1: exponent − 52 plus the mantissa's trailing zeros. */
function trailingZeros(value: number): number {
  scratchDouble[0] = value;
  const high = scratchHalves[HIGH] as number;
  const low = scratchHalves[1 - HIGH] as number;
  const exponent = ((high >>> 20) & 0x7ff) - 1075;
  if (low !== 0) return exponent + 31 - Math.clz32(low & -low);
  const top = high & 0xfffff;
  return exponent + (top === 0 ? 52 : 63 - Math.clz32(top & -top));
}

/** IPv6 keys as exact double offsets from the start of an aligned hull block (see top). */
export class RelativeIPv6Keys implements KeySpace {
  readonly family = 6;
  readonly width = 128;
  readonly maxPrefix: number;
  /** Start of the hull in code-unit form. */
  readonly hull: string;
  readonly hullPrefix: number;
  private readonly hullSize: number;
  /** The hull ends at the top of the address space, so its end is "past the top". */
  private readonly hullAtTop: boolean;
  private readonly scratchUnits = new Uint16Array(8);

  constructor(hull: string, hullPrefix: number) {
    this.hull = maskUnits(hull, hullPrefix);
    this.hullPrefix = hullPrefix;
    this.maxPrefix = Math.min(128, hullPrefix + 53);
    this.hullSize = power(128 - hullPrefix);
    this.hullAtTop = nextUnits(this.hull, hullPrefix) === undefined;
  }

  /** Offset of an address inside the hull, exact for addresses aligned at maxPrefix. */
  private offsetOf(address: string): number {
    const hullPrefix = this.hullPrefix;
    let offset = 0;
    for (let unit = 0; unit < 8; unit++) {
      let value = address.charCodeAt(unit);
      const unitStart = unit * 16;
      if (unitStart + 16 <= hullPrefix) value = 0;
      else if (unitStart < hullPrefix) value &= 0xffff >>> (hullPrefix - unitStart);
      offset = offset * 65536 + value;
    }
    return offset;
  }

  private inHull(address: string): boolean {
    return maskUnits(address, this.hullPrefix) === this.hull;
  }

  keyOf(address: AddressKey, prefix: number): Key | undefined {
    if (prefix > this.maxPrefix || prefix < this.hullPrefix || !this.inHull(address as string))
      return undefined;
    return this.offsetOf(address as string);
  }

  toAddress(key: Key): AddressKey {
    // Offset digits in base 65536 (exact: division by a power of two), added to the hull's units.
    let offset = key as number;
    const hull = this.hull;
    const units = this.scratchUnits;
    let carry = 0;
    for (let unit = 7; unit >= 0; unit--) {
      const high = Math.floor(offset / 65536);
      const sum = hull.charCodeAt(unit) + (offset - high * 65536) + carry;
      offset = high;
      units[unit] = sum & 0xffff;
      carry = sum >>> 16;
    }
    return String.fromCharCode(
      units[0] as number,
      units[1] as number,
      units[2] as number,
      units[3] as number,
      units[4] as number,
      units[5] as number,
      units[6] as number,
      units[7] as number,
    );
  }

  buddy(key: Key, prefix: number): Key {
    const size = power(128 - prefix);
    const offset = key as number;
    return Math.floor(offset / size) % 2 === 1 ? offset - size : offset + size;
  }

  upperHalf(key: Key, prefix: number): Key {
    return (key as number) + power(127 - prefix);
  }

  mask(key: Key, prefix: number): Key {
    // Also right for keys at or past the hull's end (a cursor can be there).
    const size = power(128 - prefix);
    return Math.floor((key as number) / size) * size;
  }

  next(key: Key, prefix: number): Key | undefined {
    const next = (key as number) + power(128 - prefix);
    return this.hullAtTop && next >= this.hullSize ? undefined : next;
  }

  ceilAligned(address: AddressKey, prefix: number): Key | undefined {
    const text = address as string;
    const masked = maskUnits(text, prefix);
    const hullOfMasked = maskUnits(masked, this.hullPrefix);
    if (hullOfMasked < this.hull) return 0;
    if (hullOfMasked > this.hull) return undefined;
    let key = this.offsetOf(masked);
    if (masked !== text) key += power(128 - prefix);
    return key >= this.hullSize ? undefined : key;
  }

  coverGap(from: Key, to: Key | undefined, visit: (key: Key, prefix: number) => void): void {
    let start = from as number;
    const end = to === undefined ? this.hullSize : (to as number);
    const hullBits = 128 - this.hullPrefix;
    while (start < end) {
      const alignment = start === 0 ? hullBits : Math.min(hullBits, trailingZeros(start));
      const hostBits = Math.min(alignment, floorLog2(end - start));
      visit(start, 128 - hostBits);
      start += power(hostBits);
    }
  }

  newTable(expected?: number): BlockTable<Key> {
    return new Float64BlockTable(expected) as BlockTable<Key>;
  }
}

export function bigIntToUnits(value: bigint): string {
  return bigIntToKey(6, value) as string;
}

export function unitsToBigInt(key: string): bigint {
  return keyToBigInt(6, key);
}
