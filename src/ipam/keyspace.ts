/**
 * Arithmetic on block start addresses in the allocator's key form, one implementation per family.
 *
 * IPv4 keys are the address with its top bit flipped, as a signed 32-bit integer: the order is the
 * address order, every key is a small integer (no heap number per Map entry) and all buddy
 * arithmetic is plain 32-bit XOR/AND. IPv6 keys are 32 lower-case hex digits: fixed width, so string
 * order is address order, and strings hash well in V8 (BigInt keys hash by their low bits only).
 */
import type { AddressKey, Family } from "./address.ts";

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
};

const HEX_DIGITS = "0123456789abcdef";
const ZEROS = "0".repeat(32);
const F_DIGITS = "f".repeat(32);

function hexValue(code: number): number {
  return code <= 57 ? code - 48 : code - 87;
}

/** Flips bit `bit` (0 = least significant) of a 32-digit hex key. */
function flipHexBit(key: string, bit: number): string {
  const index = 31 - (bit >>> 2);
  const digit = hexValue(key.charCodeAt(index)) ^ (1 << (bit & 3));
  return key.slice(0, index) + (HEX_DIGITS[digit] as string) + key.slice(index + 1);
}

function bigIntBitLength(value: bigint): number {
  return value === 0n ? 0 : value.toString(2).length;
}

const TWO_128 = 1n << 128n;

export const ipv6Keys: KeySpace = {
  family: 6,
  width: 128,
  zero: ZEROS,
  fromAddress: (address) => address as string,
  toAddress: (key) => key as string,
  buddy: (key, prefix) => flipHexBit(key as string, 128 - prefix),
  upperHalf: (key, prefix) => flipHexBit(key as string, 127 - prefix),
  mask: (key, prefix) => {
    const text = key as string;
    const whole = prefix >>> 2;
    const partialBits = prefix & 3;
    if (partialBits === 0) return text.slice(0, whole) + ZEROS.slice(whole);
    const digit = hexValue(text.charCodeAt(whole)) & (0xf0 >>> partialBits) & 0xf;
    return text.slice(0, whole) + (HEX_DIGITS[digit] as string) + ZEROS.slice(whole + 1);
  },
  next: (key, prefix) => {
    // Add 2^(128 − prefix): add 1 << (bit % 4) at the digit holding that bit, then carry left.
    const text = key as string;
    const bit = 128 - prefix;
    if (bit === 128) return undefined;
    let index = 31 - (bit >>> 2);
    let carry = 1 << (bit & 3);
    let tail = text.slice(index + 1);
    while (index >= 0) {
      const sum = hexValue(text.charCodeAt(index)) + carry;
      tail = (HEX_DIGITS[sum & 15] as string) + tail;
      if (sum < 16) return text.slice(0, index) + tail;
      carry = 1;
      index--;
    }
    return undefined;
  },
  toBigInt: (key) => BigInt(`0x${key as string}`),
  fromBigInt: (value) => value.toString(16).padStart(32, "0"),
  coverGap: (from, to, visit) => {
    let start = BigInt(`0x${from as string}`);
    const end = to === undefined ? TWO_128 : BigInt(`0x${to as string}`);
    while (start < end) {
      let alignment = 0;
      if (start === 0n) alignment = 128;
      else while (((start >> BigInt(alignment)) & 1n) === 0n) alignment++;
      const room = bigIntBitLength(end - start) - 1;
      const hostBits = Math.min(alignment, room);
      visit(start.toString(16).padStart(32, "0"), 128 - hostBits);
      start += 1n << BigInt(hostBits);
    }
  },
};

export function keySpaceOf(family: Family): KeySpace {
  return family === 4 ? ipv4Keys : ipv6Keys;
}

/** Largest possible key, handy as an "after everything" bound. */
export const IPV6_TOP_KEY = F_DIGITS;
