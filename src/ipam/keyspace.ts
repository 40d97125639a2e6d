/**
 * Arithmetic on block start addresses in the allocator's key form, one implementation per family.
 *
 * IPv4 keys are the address with its top bit flipped, as a signed 32-bit integer: the order is the
 * address order, every key is a small integer (no heap number per Map entry) and all buddy
 * arithmetic is plain 32-bit XOR/AND. IPv6 keys are strings of 8 UTF-16 code units, one per 16-bit
 * group: fixed width, so string order is address order; a bit flip rebuilds one short flat string;
 * and they hash well (BigInt keys would hash by their low bits only).
 */
import { type AddressKey, bigIntToKey, type Family, keyToBigInt } from "./address.ts";
import { type BlockTable, Int32BlockTable, StringBlockTable } from "./block-table.ts";

export type Key = number | string;

export interface KeySpace {
  readonly family: Family;
  readonly width: number;
  /** Allocator key of an address key (see address.ts). */
  fromAddress(address: AddressKey): Key;
  toAddress(key: Key): AddressKey;
  /** The other half of the parent of block `key` at level `prefix` (prefix ≥ 1). */
  buddy(key: Key, prefix: number): Key;
  /** The upper half of block `key` at level `prefix` (prefix < width). */
  upperHalf(key: Key, prefix: number): Key;
  /** Start of the block of level `prefix` that holds `key`. */
  mask(key: Key, prefix: number): Key;
  /** Start of the next block of level `prefix` (key must be aligned); undefined past the top. */
  next(key: Key, prefix: number): Key | undefined;
  /** Lowest key (address 0). */
  readonly zero: Key;
  toBigInt(key: Key): bigint;
  fromBigInt(value: bigint): Key;
  /**
   * Calls `visit` for the maximal aligned blocks covering `from` up to (excluding) `to`;
   * `to` undefined means the top of the address space.
   */
  coverGap(from: Key, to: Key | undefined, visit: (key: Key, prefix: number) => void): void;
  newTable(): BlockTable<Key>;
}

const SIGN = 0x80000000;
const TWO_32 = 4294967296;

/** IPV4_MASK[p] keeps the top p bits; level 0 is handled apart (a shift by 32 is a shift by 0). */
const IPV4_MASK: number[] = [];
for (let prefix = 0; prefix <= 32; prefix++) IPV4_MASK.push(prefix === 0 ? 0 : -1 << (32 - prefix));

export const ipv4Keys: KeySpace = {
  family: 4,
  width: 32,
  zero: -SIGN,
  fromAddress: (address) => ((address as number) ^ SIGN) | 0,
  toAddress: (key) => ((key as number) ^ SIGN) >>> 0,
  buddy: (key, prefix) => (key as number) ^ (1 << (32 - prefix)),
  upperHalf: (key, prefix) => (key as number) ^ (1 << (31 - prefix)),
  // Masking the biased key: bits below 31 are the address bits; bit 31 is inverted, so level 0 is -2^31.
  mask: (key, prefix) => (prefix === 0 ? -SIGN : (key as number) & (IPV4_MASK[prefix] as number)),
  next: (key, prefix) => {
    const next = (key as number) + 2 ** (32 - prefix);
    return next >= SIGN ? undefined : next;
  },
  toBigInt: (key) => BigInt(((key as number) ^ SIGN) >>> 0),
  fromBigInt: (value) => (Number(value) ^ SIGN) | 0,
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
  newTable: () => new Int32BlockTable() as BlockTable<Key>,
};

const ZERO_UNITS = "\0".repeat(8);

/** Flips bit `bit` (0 = least significant) of an IPv6 key. */
function flipBit(key: string, bit: number): string {
  const unit = 7 - (bit >>> 4);
  return (
    key.slice(0, unit) + String.fromCharCode(key.charCodeAt(unit) ^ (1 << (bit & 15))) + key.slice(unit + 1)
  );
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
  zero: ZERO_UNITS,
  fromAddress: (address) => address as string,
  toAddress: (key) => key as string,
  buddy: (key, prefix) => flipBit(key as string, 128 - prefix),
  upperHalf: (key, prefix) => flipBit(key as string, 127 - prefix),
  mask: (key, prefix) => {
    const text = key as string;
    const whole = prefix >>> 4;
    const partialBits = prefix & 15;
    if (partialBits === 0) return text.slice(0, whole) + ZERO_UNITS.slice(whole);
    const kept = text.charCodeAt(whole) & (0xffff << (16 - partialBits)) & 0xffff;
    return text.slice(0, whole) + String.fromCharCode(kept) + ZERO_UNITS.slice(whole + 1);
  },
  next: (key, prefix) => {
    // Add 2^(128 − prefix) at the code unit holding that bit, then carry toward the front.
    if (prefix === 0) return undefined;
    const text = key as string;
    const bit = 128 - prefix;
    let unit = 7 - (bit >>> 4);
    let carry = 1 << (bit & 15);
    let tail = text.slice(unit + 1);
    while (unit >= 0) {
      const sum = text.charCodeAt(unit) + carry;
      tail = String.fromCharCode(sum & 0xffff) + tail;
      if (sum <= 0xffff) return text.slice(0, unit) + tail;
      carry = 1;
      unit--;
    }
    return undefined;
  },
  toBigInt: (key) => keyToBigInt(6, key as string),
  fromBigInt: (value) => bigIntToKey(6, value) as string,
  coverGap: (from, to, visit) => {
    let start: string | undefined = from as string;
    const end = to as string | undefined;
    while (start !== undefined && (end === undefined || start < end)) {
      const hostBits = Math.min(trailingZeroBits(start), floorLog2Difference(start, end));
      visit(start, 128 - hostBits);
      start = ipv6Keys.next(start, 128 - hostBits) as string | undefined;
    }
  },
  newTable: () => new StringBlockTable() as BlockTable<Key>,
};

export function keySpaceOf(family: Family): KeySpace {
  return family === 4 ? ipv4Keys : ipv6Keys;
}
