// Resource types of ipam.mandelsoft.org/v1alpha1. Field names are the wire contract of the original
// mandelsoft/kubipam: never rename or remove one.

// The object model is the runtime's (types only: the API loads no runtime code).
import type { Condition } from "../runtime/conditions.ts";
import type { ObjectMeta } from "../runtime/kube.ts";

export type { Condition, ObjectMeta };

export const GROUP = "ipam.mandelsoft.org";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The one finalizer kubipam puts on ranges and requests (the original's name). */
export const FINALIZER = "mandelsoft.org/ipam";
/**
 * Set in the body of every IPAMAllocation kubipam creates and removed only when the block is released,
 * so a record cannot disappear (kubectl delete only marks it) while its holder lives.
 */
export const ALLOCATION_FINALIZER = `${GROUP}/held`;
/**
 * Label on IPAMAllocation objects naming their range, for listing a range's allocations: the range
 * name, or for names longer than a label value allows, a shortened form (see rangeLabelValue).
 */
export const RANGE_LABEL = `${GROUP}/range`;

/** Upper bound of `IPAMRange.spec.reuseCooldownSeconds` (one day). */
export const MAX_COOLDOWN_SECONDS = 86400;

export type RangeMode = "FirstMatch" | "RoundRobin";
export type RangeState = "Ready" | "Invalid" | "Deleting";
export type RequestState = "Ready" | "Invalid" | "Busy";

export interface IPAMRangeSpec {
  ranges: string[];
  chunkSize?: number;
  mode?: string;
  /** Namespaces whose requests may use this range besides its own; "*" allows all. */
  allowedNamespaces?: string[];
  /** Entries (§2 grammar, the range's family) never handed out, not even to an explicit request. */
  exclude?: string[];
  /** The network's gateway: excluded like an `exclude` entry; reported to Cluster API claims. */
  gateway?: string;
  /** Prefix length of the network reported with Cluster API addresses (see `claimPrefix`). */
  prefix?: number;
  /** Seconds a released block is kept from automatic allocation (0–86400, default 0). */
  reuseCooldownSeconds?: number;
}

export interface IPAMRangeStatus {
  state?: RangeState;
  message?: string;
  roundRobin?: string[];
  observedGeneration?: number;
  conditions?: Condition[];
  /** Number of addresses in the pool, exact decimal. */
  size?: string;
  /** Addresses allocated inside the pool, exact decimal. */
  allocated?: string;
  /** Addresses free now (neither allocated, excluded nor cooling down), exact decimal. */
  free?: string;
  /** Excluded pool addresses (exclude entries, gateway) not under an allocation, exact decimal. */
  excludedAddresses?: string;
  /** Pool addresses cooling down after a release, exact decimal. size = allocated + free + excluded + cooling. */
  coolingAddresses?: string;
  /**
   * Allocated blocks that lie in space removed from spec.ranges or over an exclusion added after
   * them, kept until released.
   */
  pendingRemovals?: string[];
  /** Released blocks cooling down, `<cidr>@<ISO end time>` (restored when a controller starts). */
  cooling?: string[];
}

export interface IPAMRange {
  apiVersion: typeof API_VERSION;
  kind: "IPAMRange";
  metadata: ObjectMeta;
  spec: IPAMRangeSpec;
  status?: IPAMRangeStatus;
}

export interface IPAMRequestSpec {
  ipam: { name?: string; namespace?: string };
  size?: number;
  request?: string;
  description?: string;
}

export interface IPAMRequestStatus {
  state?: RequestState;
  message?: string;
  cidr?: string;
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface IPAMRequest {
  apiVersion: typeof API_VERSION;
  kind: "IPAMRequest";
  metadata: ObjectMeta;
  spec: IPAMRequestSpec;
  status?: IPAMRequestStatus;
}

/**
 * One allocated block. Created before a request's status.cidr is written and named by range and
 * block, so the API server refuses a second allocation of the same block (AlreadyExists) — the same
 * guarantee Kubernetes' Service-IP allocator gets from its IPAddress objects.
 */
export interface IPAMAllocationSpec {
  range: { name: string; uid: string };
  cidr: string;
  request: { namespace: string; name: string; uid: string };
}

export interface IPAMAllocation {
  apiVersion: typeof API_VERSION;
  kind: "IPAMAllocation";
  metadata: ObjectMeta;
  spec: IPAMAllocationSpec;
}

/** Resource descriptors, shaped like the runtime's ResourceType. */
export const ipamRangeResource = {
  group: GROUP,
  version: VERSION,
  plural: "ipamranges",
  kind: "IPAMRange",
  namespaced: true,
} as const;

export const ipamRequestResource = {
  group: GROUP,
  version: VERSION,
  plural: "ipamrequests",
  kind: "IPAMRequest",
  namespaced: true,
} as const;

export const ipamAllocationResource = {
  group: GROUP,
  version: VERSION,
  plural: "ipamallocations",
  kind: "IPAMAllocation",
  namespaced: true,
} as const;
