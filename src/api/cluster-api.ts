// The subset of Cluster API (`sigs.k8s.io/cluster-api/api`, ipam/v1beta2 and core/v1beta2) that kubipam
// serves as an IPAM provider (docs/semantics.md §8). Field names are Cluster API's wire contract; the
// CRDs are Cluster API's own (installed by Cluster API, never by kubipam).

import { isPoolKind, type PoolKind } from "./pool-ref.ts";
import type { Condition, ObjectMeta } from "./types.ts";
import { GROUP } from "./types.ts";

export const CAPI_IPAM_GROUP = "ipam.cluster.x-k8s.io";
export const CAPI_IPAM_VERSION = "v1beta2";
export const CAPI_IPAM_API_VERSION = `${CAPI_IPAM_GROUP}/${CAPI_IPAM_VERSION}`;
export const CAPI_CORE_GROUP = "cluster.x-k8s.io";
export const CAPI_CORE_VERSION = "v1beta2";
export const CAPI_CORE_API_VERSION = `${CAPI_CORE_GROUP}/${CAPI_CORE_VERSION}`;

/** On a claim from before its address is published until that address is released. */
export const RELEASE_ADDRESS_FINALIZER = `${CAPI_IPAM_GROUP}/ReleaseAddress`;
/** On every IPAddress kubipam creates: removed only when its claim goes (or to re-create it). */
export const PROTECT_ADDRESS_FINALIZER = `${CAPI_IPAM_GROUP}/ProtectAddress`;
/** Label naming the Cluster an object belongs to (copied from the claim to its IPAddress). */
export const CLUSTER_NAME_LABEL = `${CAPI_CORE_GROUP}/cluster-name`;
/** On a pool or a Cluster: its claims are not served while it is present. */
export const PAUSED_ANNOTATION = `${CAPI_CORE_GROUP}/paused`;

/**
 * kubipam's own condition on a claim, written at the publication point (conditional on the claim's
 * version seen before the allocation fence was confirmed): status True, message the address with its
 * prefix (`10.0.0.5/32`). It is what "this claim holds that block" means (docs/internals.md, "Never
 * twice"); the IPAddress, status.addressRef and Ready follow from it.
 */
export const ADDRESS_CONDITION = `${GROUP}/Address`;

/** Reasons of a claim's `Ready` condition (Cluster API's constants). */
export const ClaimReadyReason = {
  /** Ready=True: the IPAddress exists (Cluster API's ReadyReason). */
  Ready: "Ready",
  PoolExhausted: "PoolExhausted",
  PoolNotReady: "PoolNotReady",
  AllocationFailed: "AllocationFailed",
} as const;
export type ClaimReadyReasonName = (typeof ClaimReadyReason)[keyof typeof ClaimReadyReason];

export interface IPPoolReference {
  apiGroup: string;
  kind: string;
  name: string;
}

export interface IPAddressClaimSpec {
  clusterName?: string;
  poolRef: IPPoolReference;
}

export interface IPAddressClaimStatus {
  conditions?: Condition[];
  addressRef?: { name?: string };
}

export interface IPAddressClaim {
  apiVersion: typeof CAPI_IPAM_API_VERSION;
  kind: "IPAddressClaim";
  metadata: ObjectMeta;
  spec: IPAddressClaimSpec;
  status?: IPAddressClaimStatus;
}

export interface IPAddressSpec {
  claimRef: { name: string };
  poolRef: IPPoolReference;
  address: string;
  prefix: number;
  gateway?: string;
}

export interface IPAddress {
  apiVersion: typeof CAPI_IPAM_API_VERSION;
  kind: "IPAddress";
  metadata: ObjectMeta;
  spec: IPAddressSpec;
}

/** The part of a Cluster kubipam reads: whether it is paused. */
export interface Cluster {
  apiVersion: typeof CAPI_CORE_API_VERSION;
  kind: "Cluster";
  metadata: ObjectMeta;
  spec?: { paused?: boolean };
}

export const ipAddressClaimResource = {
  group: CAPI_IPAM_GROUP,
  version: CAPI_IPAM_VERSION,
  plural: "ipaddressclaims",
  kind: "IPAddressClaim",
  namespaced: true,
} as const;

export const ipAddressResource = {
  group: CAPI_IPAM_GROUP,
  version: CAPI_IPAM_VERSION,
  plural: "ipaddresses",
  kind: "IPAddress",
  namespaced: true,
} as const;

export const clusterResource = {
  group: CAPI_CORE_GROUP,
  version: CAPI_CORE_VERSION,
  plural: "clusters",
  kind: "Cluster",
  namespaced: true,
} as const;

/** The kubipam pool kind a claim names, or undefined if the claim is another provider's. */
export function kubipamPoolKind(claim: IPAddressClaim): PoolKind | undefined {
  const ref = claim.spec?.poolRef;
  if (ref?.apiGroup !== GROUP) return undefined;
  return isPoolKind(ref.kind) ? ref.kind : undefined;
}

/** The name of the Cluster a claim belongs to: spec.clusterName, else the cluster-name label. */
export function clusterNameOf(claim: IPAddressClaim): string | undefined {
  return claim.spec?.clusterName || claim.metadata.labels?.[CLUSTER_NAME_LABEL] || undefined;
}

/** Whether a pool or Cluster object carries the paused annotation. */
export function hasPausedAnnotation(object: { metadata: ObjectMeta }): boolean {
  return object.metadata.annotations?.[PAUSED_ANNOTATION] !== undefined;
}

export function isClusterPaused(cluster: Cluster): boolean {
  return cluster.spec?.paused === true || hasPausedAnnotation(cluster);
}

/** The block a claim published (kubipam's Address condition), if any. */
export function publishedAddressOf(claim: IPAddressClaim): string | undefined {
  const c = claim.status?.conditions?.find((x) => x.type === ADDRESS_CONDITION);
  return c?.status === "True" && c.message ? c.message : undefined;
}
