// Indexes on the informer caches that the reconcilers look things up by.

import { isClusterPool, poolKey } from "../api/pool-ref.ts";
import type { IPAMAllocation, IPAMRequest } from "../api/types.ts";
import { isInvalid, rangeRefOf } from "../api/validation.ts";

/** Index of requests by the poolKey of the range they name. */
export const REQUESTS_BY_RANGE = "range";
/** Index of requests that name a ClusterIPAMRange, by their namespace (whose labels decide consent). */
export const REQUESTS_BY_CLUSTER_NAMESPACE = "cluster-namespace";
/** Index of allocation objects by the uid of the request holding them. */
export const ALLOCATIONS_BY_REQUEST = "request";

export function requestRangeIndex(request: IPAMRequest): string[] {
  const ref = rangeRefOf(request);
  return isInvalid(ref) ? [] : [poolKey(ref)];
}

export function allocationRequestIndex(allocation: IPAMAllocation): string[] {
  const uid = allocation.spec?.request?.uid;
  return uid ? [uid] : [];
}

export function requestClusterNamespaceIndex(request: IPAMRequest): string[] {
  const ref = rangeRefOf(request);
  return !isInvalid(ref) && isClusterPool(ref) ? [request.metadata.namespace ?? ""] : [];
}
