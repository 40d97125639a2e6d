// The ports of the Cluster API provider: caches of claims, addresses and Clusters (empty until Cluster
// API's CRDs are served), the claim queue, and the writes it makes. setup.ts implements them over the
// runtime (claim-writer.ts, deferred informers).

import type { Cluster, IPAddress, IPAddressClaim, IPAddressClaimStatus } from "../api/cluster-api.ts";
import type { Cache, Queue } from "./ports.ts";

/** Index of claims by the key of the pool they name (`namespace/name`, see claimPoolKey). */
export const CLAIMS_BY_POOL = "pool";
/** Index of claims by `namespace/name` of the Cluster they belong to. */
export const CLAIMS_BY_CLUSTER = "cluster";
/** Index of claims that name a ClusterIPAMRange, by their namespace (whose labels decide consent). */
export const CLAIMS_BY_CLUSTER_NAMESPACE = "cluster-namespace";

/** What of an IPAddress's metadata is put back; an absent field stays as it is. */
export interface AddressMetadataRepair {
  /** The whole list (ProtectAddress added to the others'). */
  finalizers?: string[];
  /** The cluster-name label's value; null removes it (the claim has none). */
  clusterName?: string | null;
  /** The whole list (the claim's and the pool's, then others' non-controller references). */
  ownerReferences?: NonNullable<IPAddress["metadata"]["ownerReferences"]>;
}

export interface ClaimWriter {
  getClaim(namespace: string, name: string): Promise<IPAddressClaim | undefined>;
  /**
   * Replaces the claim's status; always conditional on `resourceVersion` (409 otherwise): the status
   * carries the publication, which a write computed from an older view must never undo.
   */
  patchClaimStatus(
    claim: IPAddressClaim,
    status: IPAddressClaimStatus,
    resourceVersion: string | undefined,
  ): Promise<IPAddressClaim>;
  /** Adds or removes the ReleaseAddress finalizer; returns the claim afterwards (undefined once gone). */
  setClaimFinalizer(claim: IPAddressClaim, present: boolean): Promise<IPAddressClaim | undefined>;
  createAddress(address: IPAddress): Promise<IPAddress>;
  getAddress(namespace: string, name: string): Promise<IPAddress | undefined>;
  /**
   * Puts the spec and the metadata kubipam wants back (a user's edit of the address is undone), in
   * one write conditional on the address's resourceVersion (409 otherwise).
   */
  repairAddress(address: IPAddress, spec: IPAddress["spec"], metadata: AddressMetadataRepair): Promise<void>;
  /** Removes the ProtectAddress finalizer of exactly this object (uid), if it has it. */
  unprotectAddress(address: IPAddress): Promise<void>;
  /** Deletes exactly this object (uid precondition); a missing object is success. */
  deleteAddress(address: IPAddress): Promise<void>;
}

export interface ClaimDeps {
  claims: Cache<IPAddressClaim>;
  addresses: Cache<IPAddress>;
  clusters: Cache<Cluster>;
  /**
   * `synced`: the Clusters cache is complete; `absent`: Cluster API's Cluster resource is not served
   * (no Cluster exists); `forbidden`: served, but kubipam may not list it (RBAC); `pending`: not known
   * yet. A cache that becomes complete later queues every claim again.
   */
  clustersState(): "synced" | "absent" | "forbidden" | "pending";
  claimQueue: Queue;
  writer: ClaimWriter;
}
