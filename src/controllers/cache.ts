// What the informers keep of each object: everything the reconcilers read, without managedFields or
// the `kubectl apply` copy, and with the strings that recur across objects (apiVersion, kind,
// timestamps, condition types and reasons, finalizers) shared. Values unique to an object (uid,
// resourceVersion, names, CIDRs) are left alone: sharing them would only fill the table.

import type { IPAMAllocation } from "../api/types.ts";
import type { KubeObject } from "../runtime/kube.ts";
import { compactObjects, StringInterner } from "../runtime/transforms.ts";

const UNIQUE_KEYS: ReadonlySet<string> = new Set(["uid", "resourceVersion", "name", "cidr"]);

/** One transform per process: its interner is shared by every informer it is given to. */
export function cacheTransform<T extends KubeObject>(interner = new StringInterner()): (obj: T) => T {
  return compactObjects<T>({ interner, uniqueKeys: UNIQUE_KEYS });
}

/**
 * Records also lose their owner reference (to their request, for the cluster's garbage collector;
 * kubipam finds a record's request by spec.request): a few hundred bytes each at ten thousand records.
 */
export function allocationCacheTransform(
  interner = new StringInterner(),
): (a: IPAMAllocation) => IPAMAllocation {
  const compact = cacheTransform<IPAMAllocation>(interner);
  return (allocation) => {
    if (allocation.metadata?.ownerReferences !== undefined) allocation.metadata.ownerReferences = undefined;
    return compact(allocation);
  };
}
