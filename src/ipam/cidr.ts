import {
  type AddressKey,
  bigIntToKey,
  type Family,
  formatAddress,
  keyToBigInt,
  parseAddress,
  widthOf,
} from "./address.ts";
import { IpamError } from "./errors.ts";

const PREFIX_DIGITS = /^(?:0|[1-9][0-9]{0,2})$/;

/**
 * An aligned block of addresses (immutable). The start is kept in compact key form (see
 * `address.ts`) so that allocations never go through BigInt; `start`, `end` and `size` are exact
 * BigInts computed on demand.
 */
export class Cidr {
  readonly family: Family;
  readonly prefix: number;
  /** Start address: unsigned number for IPv4, 8 UTF-16 code units (16-bit groups) for IPv6. */
  readonly startKey: AddressKey;

  private constructor(family: Family, startKey: AddressKey, prefix: number) {
    this.family = family;
    this.startKey = startKey;
    this.prefix = prefix;
  }

  /** Trusted constructor for already aligned keys (used by the allocator). */
  static fromKey(family: Family, startKey: AddressKey, prefix: number): Cidr {
    return new Cidr(family, startKey, prefix);
  }

  /** The block of `prefix` bits that holds `address` (host bits are masked). */
  static of(family: Family, address: bigint, prefix: number): Cidr {
    const width = widthOf(family);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > width) {
      throw new IpamError("InvalidRange", `invalid prefix length ${prefix}: network ${width}`);
    }
    if (address < 0n || address >= 1n << BigInt(width)) {
      throw new IpamError(
        "InvalidRange",
        `address ${address} is not an ${family === 4 ? "IPv4" : "IPv6"} address`,
      );
    }
    const hostBits = BigInt(width - prefix);
    const start = (address >> hostBits) << hostBits;
    return new Cidr(family, bigIntToKey(family, start), prefix);
  }

  /** `addr/prefix`, host bits masked; `::ffff:a.b.c.d/n` with n ≥ 96 is the IPv4 block /(n−96). */
  static parse(text: string): Cidr {
    const parsed = Cidr.tryParse(text);
    if (parsed === undefined) throw new IpamError("InvalidRange", `invalid CIDR "${text}"`);
    return parsed;
  }

  /** A single address as a /32 or /128 block. */
  static parseIP(text: string): Cidr {
    const parsed = Cidr.tryParseIP(text);
    if (parsed === undefined) throw new IpamError("InvalidRange", `invalid IP "${text}"`);
    return parsed;
  }

  static tryParse(text: string): Cidr | undefined {
    if (typeof text !== "string") return undefined;
    const slash = text.indexOf("/");
    if (slash < 0 || slash !== text.lastIndexOf("/")) return undefined;
    const addressText = text.slice(0, slash);
    const prefixText = text.slice(slash + 1);
    if (!PREFIX_DIGITS.test(prefixText)) return undefined;
    const prefix = Number(prefixText);
    const address = parseAddress(addressText);
    if (address === undefined) return undefined;
    if (address.family === 4 && address.mappedIPv4) {
      if (prefix > 128) return undefined;
      if (prefix < 96) {
        // The block reaches beyond ::ffff:0:0/96, so it is an IPv6 block.
        return Cidr.of(6, 0xffff00000000n + BigInt(address.key as number), prefix);
      }
      return Cidr.of(4, BigInt(address.key as number), prefix - 96);
    }
    if (prefix > widthOf(address.family)) return undefined;
    return Cidr.of(address.family, keyToBigInt(address.family, address.key), prefix);
  }

  static tryParseIP(text: string): Cidr | undefined {
    if (typeof text !== "string") return undefined;
    const address = parseAddress(text);
    if (address === undefined) return undefined;
    return new Cidr(address.family, address.key, widthOf(address.family));
  }

  get width(): number {
    return widthOf(this.family);
  }

  get start(): bigint {
    return keyToBigInt(this.family, this.startKey);
  }

  /** Last address of the block (inclusive). */
  get end(): bigint {
    return this.start + this.size - 1n;
  }

  /** Number of addresses. */
  get size(): bigint {
    return 1n << BigInt(this.width - this.prefix);
  }

  toString(): string {
    return `${formatAddress(this.family, this.startKey)}/${this.prefix}`;
  }

  /** The start address alone, canonical. */
  addressString(): string {
    return formatAddress(this.family, this.startKey);
  }

  contains(other: Cidr): boolean {
    return (
      this.family === other.family &&
      this.prefix <= other.prefix &&
      this.start === Cidr.of(other.family, other.start, this.prefix).start
    );
  }

  overlaps(other: Cidr): boolean {
    return this.contains(other) || other.contains(this);
  }

  equals(other: Cidr): boolean {
    return this.family === other.family && this.prefix === other.prefix && this.startKey === other.startKey;
  }
}
