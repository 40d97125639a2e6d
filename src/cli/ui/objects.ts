// What the UI reads from the cluster, typed loosely on purpose: it must show objects written by any
// kubipam version — with or without the pool model v2 fields (§7), ClusterIPAMRange and Cluster API
// claims (§8) — and never fail on a field it does not know.

import {
  type Condition,
  GROUP,
  type IPAMAllocation,
  type IPAMRequest,
  RANGE_LABEL,
  VERSION,
} from "../../api/types.ts";
import type { KubeObject, ResourceType } from "../../runtime/kube.ts";

export const RANGE_KIND = "IPAMRange";
export const CLUSTER_RANGE_KIND = "ClusterIPAMRange";
export const CLAIM_KIND = "IPAddressClaim";
export type RangeKind = typeof RANGE_KIND | typeof CLUSTER_RANGE_KIND;

/** Either kind of range, with the §7 fields when the cluster's kubipam has them. */
export interface RangeObject extends KubeObject {
  kind?: string;
  spec?: {
    ranges?: unknown;
    chunkSize?: number;
    mode?: string;
    exclude?: unknown;
    gateway?: unknown;
    prefix?: number;
    reuseCooldownSeconds?: number;
    allowedNamespaces?: string[];
    namespaceSelector?: unknown;
  };
  status?: { state?: string; message?: string } & Record<string, unknown>;
}

/** A Cluster API IPAddressClaim (ipam.cluster.x-k8s.io/v1beta2), as far as the UI reads it. */
export interface ClaimObject extends KubeObject {
  spec?: { poolRef?: { apiGroup?: string; kind?: string; name?: string } };
  status?: { conditions?: Condition[]; addressRef?: { name?: string } };
}

export const clusterRangeResource: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: "clusteripamranges",
  kind: CLUSTER_RANGE_KIND,
  namespaced: false,
};

export const claimResource: ResourceType = {
  group: "ipam.cluster.x-k8s.io",
  version: "v1beta2",
  plural: "ipaddressclaims",
  kind: CLAIM_KIND,
  namespaced: true,
};

/** The key of a range: `namespace/name` for an IPAMRange, `name` for a ClusterIPAMRange. */
export function rangeKey(kind: RangeKind, namespace: string, name: string): string {
  return kind === CLUSTER_RANGE_KIND ? name : `${namespace}/${name}`;
}

export function rangeKindOf(object: RangeObject): RangeKind {
  return object.kind === CLUSTER_RANGE_KIND ? CLUSTER_RANGE_KIND : RANGE_KIND;
}

export function keyOfRange(object: RangeObject): string {
  return rangeKey(rangeKindOf(object), object.metadata.namespace ?? "", object.metadata.name ?? "");
}

/** The range a record belongs to (spec.range, kind absent: IPAMRange; else the range label). */
export function rangeKeyOfRecord(record: IPAMAllocation): string | undefined {
  const range = record.spec?.range as { name?: string; kind?: string } | undefined;
  const name = range?.name ?? record.metadata.labels?.[RANGE_LABEL];
  if (!name) return undefined;
  const kind = range?.kind === CLUSTER_RANGE_KIND ? CLUSTER_RANGE_KIND : RANGE_KIND;
  return rangeKey(kind, record.metadata.namespace ?? "", name);
}

/** The range a request names (spec.ipam, kind absent: IPAMRange, namespace absent: its own). */
export function rangeKeyOfRequest(request: IPAMRequest): string | undefined {
  const ipam = request.spec?.ipam as { name?: string; namespace?: string; kind?: string } | undefined;
  if (!ipam?.name) return undefined;
  if (ipam.kind === CLUSTER_RANGE_KIND) return ipam.name;
  return `${ipam.namespace || request.metadata.namespace || "default"}/${ipam.name}`;
}

/** The kubipam range a claim's poolRef names; undefined for other providers' pools. */
export function rangeKeyOfClaim(claim: ClaimObject): string | undefined {
  const ref = claim.spec?.poolRef;
  if (ref?.apiGroup !== GROUP || !ref.name) return undefined;
  if (ref.kind === CLUSTER_RANGE_KIND) return ref.name;
  if (ref.kind === RANGE_KIND) return `${claim.metadata.namespace ?? ""}/${ref.name}`;
  return undefined;
}

export interface HolderRef {
  kind: "IPAMRequest" | typeof CLAIM_KIND;
  namespace: string;
  name: string;
}

/** Who a record names as holder: `spec.request`, whose `kind` says IPAddressClaim for a Cluster API claim. */
export function holderOfRecord(record: IPAMAllocation): HolderRef | undefined {
  const request = record.spec?.request as { namespace?: string; name?: string; kind?: string } | undefined;
  if (!request?.name) return undefined;
  const kind = request.kind === CLAIM_KIND ? CLAIM_KIND : "IPAMRequest";
  return { kind, namespace: request.namespace ?? record.metadata.namespace ?? "", name: request.name };
}

export function holderKey(holder: HolderRef): string {
  return `${holder.kind}/${holder.namespace}/${holder.name}`;
}
