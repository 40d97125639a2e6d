// The pure part of kubipam/client: option checks, the IPAMRequest a call asks for, how an existing
// request differs from it, what a request's status means to a waiting caller, and range usage.

import { API_VERSION, type IPAMRange, type IPAMRequest, type IPAMRequestSpec } from "../api/types.ts";
import type { OwnerReference } from "../runtime/kube.ts";

/** `ClusterIPAMRange` needs a kubipam that serves that kind (spec.ipam.kind); older ones refuse it. */
export type RangeKind = "IPAMRange" | "ClusterIPAMRange";

export interface RangeRef {
  name: string;
  /** Namespace of an IPAMRange; default: the request's own. Not allowed for ClusterIPAMRange. */
  namespace?: string;
  /** Default `IPAMRange`. */
  kind?: RangeKind;
}

/** spec.ipam as kubipam reads it, including the `kind` of newer versions. */
export type RequestSpec = IPAMRequestSpec & { ipam: { kind?: string } };

interface AddressSpecBase {
  /** Namespace of the IPAMRequest. */
  namespace: string;
  /** Name of the IPAMRequest: the idempotency key — a second call with the same name adopts it. */
  name: string;
  range: RangeRef;
  labels?: Record<string, string>;
  /** Set on the request, e.g. to your custom resource (same namespace), so garbage collection follows it. */
  ownerReference?: OwnerReference;
}

/** What to allocate: `size`, or `request`, or neither (the range's chunkSize). */
export type SizeOrRequest =
  | {
      /** Prefix length to allocate (24 → a /24). */
      size?: number;
      request?: undefined;
    }
  | {
      /** A CIDR or IP to reserve, or an expression (`/26`, `%6`, `#300`, `3/24`), as spec.request takes. */
      request?: string;
      size?: undefined;
    };

export type AddressSpec = AddressSpecBase & SizeOrRequest;

const NAME_LIMIT = 253;

/** Throws a TypeError naming the bad option; the API server checks the rest (name syntax, CEL rules). */
export function checkAddressSpec(o: AddressSpec): void {
  const nonEmpty = (what: string, v: unknown) => {
    if (typeof v !== "string" || v.length === 0) throw new TypeError(`${what} must be a non-empty string`);
    if (v.length > NAME_LIMIT) throw new TypeError(`${what} is longer than ${NAME_LIMIT} characters`);
  };
  nonEmpty("namespace", o.namespace);
  nonEmpty("name", o.name);
  if (typeof o.range !== "object" || o.range === null)
    throw new TypeError("range must be { name, namespace?, kind? }");
  nonEmpty("range.name", o.range.name);
  if (o.range.namespace !== undefined) nonEmpty("range.namespace", o.range.namespace);
  const kind = o.range.kind ?? "IPAMRange";
  if (kind !== "IPAMRange" && kind !== "ClusterIPAMRange") {
    throw new TypeError(`range.kind must be IPAMRange or ClusterIPAMRange, not ${JSON.stringify(kind)}`);
  }
  if (kind === "ClusterIPAMRange" && o.range.namespace !== undefined) {
    throw new TypeError("range.namespace must be empty for a ClusterIPAMRange (it is cluster-scoped)");
  }
  if (o.size !== undefined && o.request !== undefined) {
    throw new TypeError("give size or request, not both");
  }
  if (o.size !== undefined && (!Number.isInteger(o.size) || o.size < 0 || o.size > 128)) {
    throw new TypeError(`size must be an integer prefix length from 0 to 128, not ${o.size}`);
  }
  if (o.request !== undefined && (typeof o.request !== "string" || o.request.trim() === "")) {
    throw new TypeError("request must be a non-empty string (a CIDR, an IP or an expression like /26)");
  }
}

/** A positive, finite number of milliseconds, or the default. */
export function timeoutOf(timeoutMs: number | undefined, fallback: number): number {
  if (timeoutMs === undefined) return fallback;
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError(`timeoutMs must be a positive number of milliseconds, not ${timeoutMs}`);
  }
  return timeoutMs;
}

export function requestSpecOf(o: AddressSpec): RequestSpec {
  const kind = o.range.kind ?? "IPAMRange";
  const ipam: RequestSpec["ipam"] = { name: o.range.name };
  if (kind !== "IPAMRange") ipam.kind = kind;
  if (o.range.namespace !== undefined) ipam.namespace = o.range.namespace;
  return {
    ipam,
    ...(o.size !== undefined ? { size: o.size } : {}),
    ...(o.request !== undefined ? { request: o.request } : {}),
  };
}

/** The IPAMRequest object a call creates. */
export function desiredRequest(o: AddressSpec): IPAMRequest {
  const metadata: IPAMRequest["metadata"] & { ownerReferences?: OwnerReference[] } = {
    name: o.name,
    namespace: o.namespace,
  };
  if (o.labels && Object.keys(o.labels).length > 0) metadata.labels = { ...o.labels };
  if (o.ownerReference) metadata.ownerReferences = [o.ownerReference];
  return { apiVersion: API_VERSION, kind: "IPAMRequest", metadata, spec: requestSpecOf(o) };
}

/**
 * How `existing` (of namespace `namespace`) differs from `wanted`, one phrase per field; empty when it
 * asks for the same thing. An unset range namespace means the request's own; an unset kind, IPAMRange.
 */
export function specDifferences(
  existing: RequestSpec | undefined,
  wanted: RequestSpec,
  namespace: string,
): string[] {
  const ref = (s: RequestSpec | undefined) => {
    const kind = s?.ipam?.kind || "IPAMRange";
    const ns = kind === "IPAMRange" ? s?.ipam?.namespace || namespace : s?.ipam?.namespace || "";
    return { kind, namespace: ns, name: s?.ipam?.name ?? "" };
  };
  const a = ref(existing);
  const b = ref(wanted);
  const out: string[] = [];
  const show = (v: unknown) => (v === undefined || v === "" ? "unset" : JSON.stringify(v));
  const compare = (field: string, have: unknown, want: unknown) => {
    if ((have ?? "") !== (want ?? "")) out.push(`${field} is ${show(have)}, this call wants ${show(want)}`);
  };
  compare("spec.ipam.kind", a.kind, b.kind);
  compare("spec.ipam.namespace", a.namespace, b.namespace);
  compare("spec.ipam.name", a.name, b.name);
  compare("spec.size", existing?.size, wanted.size);
  compare("spec.request", existing?.request, wanted.request);
  return out;
}

export type RequestOutcome =
  | { kind: "ready"; cidr: string }
  | { kind: "invalid" }
  | { kind: "deleted" }
  | { kind: "pending" };

/** What a request's current state means to a caller waiting for an address. */
export function requestOutcome(request: IPAMRequest | undefined): RequestOutcome {
  if (!request || request.metadata.deletionTimestamp) return { kind: "deleted" };
  const status = request.status;
  if (status?.state === "Ready" && status.cidr) return { kind: "ready", cidr: status.cidr };
  if (status?.state === "Invalid") return { kind: "invalid" };
  return { kind: "pending" };
}

export interface RangeUsage {
  /** Addresses in the pool. */
  size: bigint;
  allocated: bigint;
  free: bigint;
}

const DECIMAL = /^[0-9]+$/;

/** The usage a range's status reports (exact decimals), or undefined before the controller wrote it. */
export function rangeUsage(range: IPAMRange): RangeUsage | undefined {
  const { size, allocated, free } = range.status ?? {};
  if (size === undefined || allocated === undefined || free === undefined) return undefined;
  for (const [field, v] of [
    ["size", size],
    ["allocated", allocated],
    ["free", free],
  ] as const) {
    if (!DECIMAL.test(v))
      throw new Error(`range status.${field} is not a decimal number: ${JSON.stringify(v)}`);
  }
  return { size: BigInt(size), allocated: BigInt(allocated), free: BigInt(free) };
}
