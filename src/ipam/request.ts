import { type Family, familyName, widthOf } from "./address.ts";
import { Cidr } from "./cidr.ts";
import { IpamError } from "./errors.ts";

export type RequestPlan =
  | { kind: "size"; size: number }
  | { kind: "block"; cidr: Cidr }
  | { kind: "indexed"; index: bigint; size: number };

export interface RequestSpec {
  size?: number | undefined;
  request?: string | undefined;
}

const ACCEPTED_FORMS = "use a CIDR, an IP, <n>, /<n>, %<hostbits>, #<count>, <i>/<n> or <i>/%<hostbits>";
const DIGITS = /^(?:0|[1-9][0-9]*)$/;

/** Checks `spec.size` (§3): returns it, or 0 when absent or 0. */
export function validateSize(size: number | undefined, family: Family): number {
  if (size === undefined || size === null) return 0;
  if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
    throw new IpamError("InvalidSize", `invalid size ${String(size)}`);
  }
  const width = widthOf(family);
  if (size > width) throw new IpamError("InvalidSize", `size ${size} too large: network ${width}`);
  return size;
}

function bitLength(value: bigint): number {
  return value === 0n ? 0 : value.toString(2).length;
}

/**
 * Turns a request spec into what the allocator must do (§3). `spec.size` > 0 wins over the chunk size;
 * a request expression that implies a size must agree with a given `spec.size`.
 */
export function parseRequest(spec: RequestSpec, family: Family, chunkSize?: number): RequestPlan {
  const width = widthOf(family);
  const size = validateSize(spec.size, family);
  const raw = spec.request;
  if (raw === undefined || raw === null || (typeof raw === "string" && raw.trim() === "")) {
    const chunk =
      typeof chunkSize === "number" && Number.isInteger(chunkSize) && chunkSize > 0 ? chunkSize : 0;
    if (chunk > width) throw new IpamError("InvalidSize", `chunk size ${chunk} too large: network ${width}`);
    return { kind: "size", size: size > 0 ? size : chunk > 0 ? chunk : width };
  }
  if (typeof raw !== "string") {
    throw new IpamError("InvalidRequest", `invalid request ${String(raw)}: ${ACCEPTED_FORMS}`);
  }
  const text = raw.trim();
  const invalid = (): IpamError =>
    new IpamError("InvalidRequest", `invalid request "${text}": ${ACCEPTED_FORMS}`);

  const checkFamily = (cidr: Cidr): Cidr => {
    if (cidr.family !== family) {
      throw new IpamError(
        "InvalidRequest",
        `invalid request "${text}": ${familyName(cidr.family)} but the range is ${familyName(family)}`,
      );
    }
    return cidr;
  };
  const sizeFrom = (digits: string): number => {
    if (!DIGITS.test(digits)) throw invalid();
    const value = BigInt(digits);
    if (value > BigInt(width))
      throw new IpamError("InvalidSize", `size ${digits} too large: network ${width}`);
    return Number(value);
  };
  const sizeFromHostBits = (digits: string): number => {
    if (!DIGITS.test(digits)) throw invalid();
    const value = BigInt(digits);
    if (value > BigInt(width)) {
      throw new IpamError(
        "InvalidSize",
        `invalid request "${text}": ${digits} host bits too many: network ${width}`,
      );
    }
    return width - Number(value);
  };
  const agree = (implied: number): number => {
    if (size > 0 && size !== implied) {
      throw new IpamError(
        "InvalidRequest",
        `invalid request "${text}": it means size ${implied} but size is ${size}`,
      );
    }
    return implied;
  };

  const block = Cidr.tryParseIP(text) ?? Cidr.tryParse(text);
  if (block !== undefined) {
    checkFamily(block);
    agree(block.prefix);
    return { kind: "block", cidr: block };
  }

  const first = text[0];
  if (first === "/") return { kind: "size", size: agree(sizeFrom(text.slice(1))) };
  if (first === "%") return { kind: "size", size: agree(sizeFromHostBits(text.slice(1))) };
  if (first === "#") {
    const digits = text.slice(1);
    if (!DIGITS.test(digits)) throw invalid();
    const count = BigInt(digits);
    if (count === 0n)
      throw new IpamError("InvalidRequest", `invalid request "${text}": the count must be at least 1`);
    const hostBits = bitLength(count - 1n);
    if (hostBits > width) {
      throw new IpamError(
        "InvalidSize",
        `invalid request "${text}": count ${digits} too large: network ${width}`,
      );
    }
    return { kind: "size", size: agree(width - hostBits) };
  }
  const slash = text.indexOf("/");
  if (slash > 0) {
    const indexText = text.slice(0, slash);
    if (!DIGITS.test(indexText)) throw invalid();
    const sizeText = text.slice(slash + 1);
    const blockSize = sizeText.startsWith("%") ? sizeFromHostBits(sizeText.slice(1)) : sizeFrom(sizeText);
    return { kind: "indexed", index: BigInt(indexText), size: agree(blockSize) };
  }
  if (DIGITS.test(text)) return { kind: "size", size: agree(sizeFrom(text)) };
  throw invalid();
}
