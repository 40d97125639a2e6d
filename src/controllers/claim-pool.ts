// Which kubipam pool a Cluster API claim names (a pool reference, src/api/pool-ref.ts). A poolRef has
// no namespace: an IPAMRange pool is in the claim's namespace, a ClusterIPAMRange has none.

import { type IPAddressClaim, kubipamPoolKind } from "../api/cluster-api.ts";
import { CLUSTER_RANGE_KIND, type PoolRef, poolKey, poolRef } from "../api/pool-ref.ts";

export function claimPoolOf(claim: IPAddressClaim): PoolRef | undefined {
  const kind = kubipamPoolKind(claim);
  const name = claim.spec?.poolRef?.name;
  if (!kind || !name) return undefined;
  return poolRef(kind, claim.metadata.namespace ?? "", name);
}

/** Index function: claims by the key of their pool (kubipam's claims only). */
export function claimPoolIndex(claim: IPAddressClaim): string[] {
  const pool = claimPoolOf(claim);
  return pool ? [poolKey(pool)] : [];
}

/** Index function: claims that name a ClusterIPAMRange, by their namespace. */
export function claimClusterNamespaceIndex(claim: IPAddressClaim): string[] {
  return claimPoolOf(claim)?.kind === CLUSTER_RANGE_KIND ? [claim.metadata.namespace ?? ""] : [];
}
