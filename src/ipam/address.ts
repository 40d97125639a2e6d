/**
 * Strict parsing and canonical printing of single IPv4/IPv6 addresses.
 *
 * Addresses are kept in a compact form that the allocator can use as a hash and ordering key without
 * BigInt: IPv4 as an unsigned 32-bit number, IPv6 as a string of 8 UTF-16 code units, one per 16-bit
 * group (fixed width, so string order is address order; a bit flip touches one code unit).
 */

export type Family = 4 | 6;

/** IPv4 address as unsigned number, IPv6 address as 8 UTF-16 code units (one per 16-bit group). */
export type AddressKey = number | string;

export interface ParsedAddress {
  family: Family;
  key: AddressKey;
}

export function widthOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

export function familyName(family: Family): string {
  return family === 4 ? "IPv4" : "IPv6";
}

const IPV4_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Dotted quad without leading zeros; undefined if `text` is anything else. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!IPV4_OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** The eight 16-bit groups of an IPv6 address in any RFC 4291 spelling, or undefined. */
function parseIPv6Groups(text: string): number[] | undefined {
  if (text.length < 2 || text.length > 45 || !text.includes(":")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parseHalf = (half: string, allowIPv4: boolean): number[] | undefined => {
    if (half === "") return [];
    const groups: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      if (allowIPv4 && i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIPv4(part);
        if (v4 === undefined) return undefined;
        groups.push(Math.floor(v4 / 65536), v4 % 65536);
      } else {
        if (!HEX_GROUP.test(part)) return undefined;
        groups.push(Number.parseInt(part, 16));
      }
    }
    return groups;
  };
  if (halves.length === 1) {
    const groups = parseHalf(text, true);
    return groups !== undefined && groups.length === 8 ? groups : undefined;
  }
  const head = parseHalf(halves[0] as string, false);
  const tail = parseHalf(halves[1] as string, true);
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
  const zeros: number[] = new Array<number>(8 - head.length - tail.length).fill(0);
  return [...head, ...zeros, ...tail];
}

function isIPv4Mapped(groups: number[]): boolean {
  return (
    groups[0] === 0 &&
    groups[1] === 0 &&
    groups[2] === 0 &&
    groups[3] === 0 &&
    groups[4] === 0 &&
    groups[5] === 0xffff
  );
}

/**
 * Parses one address. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d` in any spelling) are IPv4, as the
 * contract says. `mappedIPv4` tells the CIDR parser that the text was written as IPv6.
 */
export function parseAddress(text: string): (ParsedAddress & { mappedIPv4: boolean }) | undefined {
  if (!text.includes(":")) {
    const v4 = parseIPv4(text);
    return v4 === undefined ? undefined : { family: 4, key: v4, mappedIPv4: false };
  }
  const groups = parseIPv6Groups(text);
  if (groups === undefined) return undefined;
  if (isIPv4Mapped(groups)) {
    return { family: 4, key: (groups[6] as number) * 65536 + (groups[7] as number), mappedIPv4: true };
  }
  return { family: 6, key: String.fromCharCode(...groups), mappedIPv4: false };
}

export function formatIPv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** RFC 5952: lower case, no leading zeros, the first longest run of two or more zero groups as `::`. */
export function formatIPv6(key: string): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(key.charCodeAt(i));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const text = (from: number, to: number): string =>
    groups
      .slice(from, to)
      .map((group) => group.toString(16))
      .join(":");
  if (bestStart < 0) return text(0, 8);
  return `${text(0, bestStart)}::${text(bestStart + bestLength, 8)}`;
}

export function formatAddress(family: Family, key: AddressKey): string {
  return family === 4 ? formatIPv4(key as number) : formatIPv6(key as string);
}

export function keyToBigInt(family: Family, key: AddressKey): bigint {
  if (family === 4) return BigInt(key as number);
  const text = key as string;
  let value = 0n;
  for (let i = 0; i < 8; i++) value = (value << 16n) | BigInt(text.charCodeAt(i));
  return value;
}

export function bigIntToKey(family: Family, value: bigint): AddressKey {
  if (family === 4) return Number(value);
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  return String.fromCharCode(...groups);
}
