// What the UI reads from the cluster, typed loosely on purpose: it must show objects written by any
// kubipam version — with or without the pool model v2 fields (§7), ClusterIPAMRange and Cluster API
// claims (§8) — and never fail on a field it does not know.

import { ipAddressClaimResource } from "../../api/cluster-api.ts";
import { CLUSTER_RANGE_KIND, type PoolKind, poolKey, poolRef, RANGE_KIND } from "../../api/pool-ref.ts";
import {
  type Condition,
  GROUP,
  type IPAMAllocation,
  type IPAMRequest,
  RANGE_LABEL,
} from "../../api/types.ts";
import type { KubeObject, ResourceType } from "../../runtime/kube.ts";

export const CLAIM_KIND = ipAddressClaimResource.kind;

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

export const claimResource: ResourceType = ipAddressClaimResource;

/** The kind a loosely read `kind` field names: ClusterIPAMRange, or (anything else) IPAMRange. */
function poolKindOf(kind: string | undefined): PoolKind {
  return kind === CLUSTER_RANGE_KIND ? CLUSTER_RANGE_KIND : RANGE_KIND;
}

/** The range a record belongs to (spec.range, kind absent: IPAMRange; else the range label). */
export function rangeKeyOfRecord(record: IPAMAllocation): string | undefined {
  const range = record.spec?.range as { name?: string; kind?: string } | undefined;
  const name = range?.name ?? record.metadata.labels?.[RANGE_LABEL];
  if (!name) return undefined;
  return poolKey(poolRef(poolKindOf(range?.kind), record.metadata.namespace ?? "", name));
}

/** The range a request names (spec.ipam, kind absent: IPAMRange, namespace absent: its own). */
export function rangeKeyOfRequest(request: IPAMRequest): string | undefined {
  const ipam = request.spec?.ipam as { name?: string; namespace?: string; kind?: string } | undefined;
  if (!ipam?.name) return undefined;
  const namespace = ipam.namespace || request.metadata.namespace || "default";
  return poolKey(poolRef(poolKindOf(ipam.kind), namespace, ipam.name));
}

/** The kubipam range a claim's poolRef names; undefined for other providers' pools. */
export function rangeKeyOfClaim(claim: ClaimObject): string | undefined {
  const ref = claim.spec?.poolRef;
  if (ref?.apiGroup !== GROUP || !ref.name) return undefined;
  if (ref.kind !== CLUSTER_RANGE_KIND && ref.kind !== RANGE_KIND) return undefined;
  return poolKey(poolRef(ref.kind, claim.metadata.namespace ?? "", ref.name));
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
