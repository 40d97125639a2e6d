// Which kubipam pool a Cluster API claim names, and the key its state has in the ledger. A poolRef has
// no namespace: an IPAMRange pool is in the claim's namespace.

import { type IPAddressClaim, kubipamPoolKind, type PoolKind } from "../api/cluster-api.ts";

export interface ClaimPool {
  kind: PoolKind;
  /** The pool's namespace ("" for a cluster-scoped pool). */
  namespace: string;
  name: string;
  /** Key of the pool's state in the ledger. */
  key: string;
}

export function claimPoolOf(claim: IPAddressClaim): ClaimPool | undefined {
  const kind = kubipamPoolKind(claim);
  const name = claim.spec?.poolRef?.name;
  if (!kind || !name) return undefined;
  const namespace = kind === "IPAMRange" ? (claim.metadata.namespace ?? "") : "";
  return { kind, namespace, name, key: `${namespace}/${name}` };
}

/** "IPAMRange ns/name" or "ClusterIPAMRange name", for messages. */
export function describePool(pool: ClaimPool): string {
  return pool.namespace ? `${pool.kind} ${pool.namespace}/${pool.name}` : `${pool.kind} ${pool.name}`;
}

/** Index function: claims by the ledger key of their pool (kubipam's claims only). */
export function claimPoolIndex(claim: IPAddressClaim): string[] {
  const pool = claimPoolOf(claim);
  return pool ? [pool.key] : [];
}
