// Validation of specs into the engine's terms, with the contract's messages. Everything user-written
// passes through here; nothing below throws anything but a result.

import {
  Cidr,
  type Exclusion,
  type Family,
  IpamError,
  parseExclusions,
  parseGateway,
  parsePool,
  validateChunkSize,
  validateMode,
} from "../ipam/index.ts";
import { type IPAMRangeSpec, type IPAMRequest, MAX_COOLDOWN_SECONDS, type RangeMode } from "./types.ts";

export interface ValidRangeSpec {
  ok: true;
  family: Family | undefined;
  blocks: Cidr[];
  mode: RangeMode;
  chunkSize: number;
  /** `spec.exclude` and the gateway (its entry reads `gateway <ip>`, so messages name it). */
  exclusions: Exclusion[];
  /** `spec.gateway` in canonical form. */
  gateway: string | undefined;
  /** `spec.prefix`, else the prefix of the one CIDR of `spec.ranges`; undefined when neither (see claimPrefix). */
  networkPrefix: number | undefined;
  /** `spec.reuseCooldownSeconds` (0: released blocks are free at once). */
  cooldownSeconds: number;
}

export interface InvalidSpec {
  ok: false;
  message: string;
}

function messageOf(err: unknown): string {
  if (err instanceof IpamError) return err.message;
  // A defect in the engine, not the user's fault; still never crash on user data.
  return `internal error validating spec: ${err instanceof Error ? err.message : String(err)}`;
}

class SpecError extends Error {}

export function validateRangeSpec(spec: IPAMRangeSpec | undefined): ValidRangeSpec | InvalidSpec {
  try {
    const ranges = spec?.ranges;
    if (!Array.isArray(ranges)) return { ok: false, message: "spec.ranges is missing" };
    const pool = parsePool(ranges);
    const mode = validateMode(spec?.mode);
    const chunkSize = spec?.chunkSize ?? 0;
    validateChunkSize(chunkSize, pool.family ?? 6);
    const width = pool.family === 4 ? 32 : 128;
    const exclusions = parseExclusions(listOf(spec?.exclude, "exclude"), pool.family);
    const gateway = gatewayOf(spec?.gateway, pool.family ?? exclusions[0]?.family);
    const prefix = optionalInteger(spec?.prefix, "prefix", width);
    const networkPrefix = prefix ?? singleCidrPrefix(ranges);
    if (gateway) checkGatewayNetwork(gateway.exclusion, gateway.text, pool.blocks, networkPrefix);
    return {
      ok: true,
      family: pool.family,
      blocks: pool.blocks,
      mode,
      chunkSize,
      exclusions: gateway ? [...exclusions, gateway.exclusion] : exclusions,
      gateway: gateway?.canonical,
      networkPrefix,
      cooldownSeconds: cooldownOf(spec?.reuseCooldownSeconds),
    };
  } catch (err) {
    if (err instanceof SpecError) return { ok: false, message: err.message };
    return { ok: false, message: messageOf(err) };
  }
}

/**
 * The prefix length reported with single addresses given to Cluster API claims (§7, §8):
 * `spec.prefix`, else the prefix of `spec.ranges` when that is exactly one CIDR; otherwise a message
 * saying `spec.prefix` is needed (claims then fail with reason `PoolNotReady`).
 */
export function claimPrefix(spec: ValidRangeSpec): { ok: true; prefix: number } | InvalidSpec {
  if (spec.networkPrefix !== undefined) return { ok: true, prefix: spec.networkPrefix };
  return {
    ok: false,
    message:
      "spec.prefix is needed: spec.ranges is not exactly one CIDR, so the network's prefix length is unknown",
  };
}

function listOf(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new SpecError(`invalid ${field}: use a list of entries`);
  return value as string[];
}

function optionalInteger(value: unknown, field: string, width: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new SpecError(`invalid ${field} ${String(value)}: use 0 to ${width}`);
  }
  if (value > width) throw new SpecError(`${field} ${value} too large: network ${width}`);
  return value;
}

function cooldownOf(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_COOLDOWN_SECONDS) {
    throw new SpecError(`invalid reuseCooldownSeconds ${String(value)}: use 0 to ${MAX_COOLDOWN_SECONDS}`);
  }
  return value;
}

interface Gateway {
  text: string;
  canonical: string;
  exclusion: Exclusion;
}

function gatewayOf(value: unknown, family: Family | undefined): Gateway | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new SpecError(`invalid gateway ${JSON.stringify(value)}: use one IP`);
  const parsed = parseGateway(value, family);
  const canonical = Cidr.of(parsed.family, parsed.first, parsed.family === 4 ? 32 : 128).addressString();
  return { text: value, canonical, exclusion: { ...parsed, entry: `gateway ${value}` } };
}

/** With a known network prefix, the gateway must be in the network of every pool block. */
function checkGatewayNetwork(
  gateway: Exclusion,
  text: string,
  blocks: readonly Cidr[],
  prefix: number | undefined,
): void {
  if (prefix === undefined) return;
  const network = Cidr.of(gateway.family, gateway.first, prefix);
  const outside = blocks.find((block) => !network.contains(block));
  if (outside) {
    throw new SpecError(
      `invalid gateway "${text}": range block ${outside} is not in its network ${network} (prefix ${prefix})`,
    );
  }
}

/** The prefix length of `ranges` when it is exactly one CIDR (host bits ignored). */
function singleCidrPrefix(ranges: readonly string[]): number | undefined {
  if (ranges.length !== 1 || !String(ranges[0]).includes("/")) return undefined;
  return Cidr.tryParse(ranges[0] as string)?.prefix;
}

export interface RangeRef {
  namespace: string;
  name: string;
}

/** The range a request names; `spec.ipam.namespace` empty means the request's own namespace. */
export function rangeRefOf(request: IPAMRequest): RangeRef | InvalidSpec {
  const name = request.spec?.ipam?.name;
  if (!name) return { ok: false, message: "IPAMRange object not specified" };
  return { namespace: request.spec.ipam.namespace || request.metadata.namespace || "default", name };
}

export function isInvalid<T extends object>(v: T | InvalidSpec): v is InvalidSpec {
  return "ok" in v && v.ok === false;
}

/** Whether a range admits requests from another namespace ("*" admits all). */
export function admitsNamespace(
  spec: IPAMRangeSpec,
  rangeNamespace: string,
  requestNamespace: string,
): boolean {
  if (rangeNamespace === requestNamespace) return true;
  const allowed = spec.allowedNamespaces ?? [];
  return allowed.includes("*") || allowed.includes(requestNamespace);
}

/**
 * Deterministic name of the IPAMAllocation object holding `cidr` in range `rangeName`, so that two
 * writers claiming one block collide at the API server. `10.0.0.0/24` → `<range>.10-0-0-0-24`,
 * `fd00::/64` → `<range>.fd00---64`.
 */
export function allocationName(rangeName: string, cidr: string): string {
  let key = cidr.replace(/[.:/]/g, "-");
  // A DNS label starts with an alphanumeric; `::1/128` gives `--1-128`.
  if (key.startsWith("-")) key = `0${key}`;
  const limit = 253;
  if (rangeName.length + 1 + key.length <= limit) return `${rangeName}.${key}`;
  const hash = fnv1a(rangeName);
  const keep = limit - 1 - key.length - hash.length - 1;
  return `${rangeName.slice(0, keep).replace(/[.-]+$/, "")}-${hash}.${key}`;
}

/**
 * The RANGE_LABEL value for a range: its name when it fits a label value (63 characters), otherwise
 * its first 54 characters and a hash of the whole name (names are DNS subdomains, so a prefix is a
 * valid label start; trailing dots and dashes are trimmed).
 */
export function rangeLabelValue(rangeName: string): string {
  if (rangeName.length <= 63) return rangeName;
  return `${rangeName.slice(0, 54).replace(/[.-]+$/, "")}-${fnv1a(rangeName)}`;
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}
