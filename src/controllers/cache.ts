// What the informers keep of each object: everything the reconcilers read, without managedFields or
// the `kubectl apply` copy, with the strings that recur across objects (apiVersion, kind, timestamps,
// condition types and reasons, finalizers) shared, and — for requests and records — one frozen copy
// of each distinct spec, condition list, finalizer list and label set. Values unique to an object
// (uid, resourceVersion, names, CIDRs) are left alone: sharing them would only fill the tables.
// Measured in docs/benchmarks.md ("Where the memory goes").

import type { IPAMAllocation, IPAMRequest } from "../api/types.ts";
import type { KubeObject } from "../runtime/kube.ts";
import { compactObjects, StringInterner, SubtreeInterner } from "../runtime/transforms.ts";

const UNIQUE_KEYS: ReadonlySet<string> = new Set(["uid", "resourceVersion", "name", "cidr"]);

/** The tables one process's informers share. */
export interface CacheTables {
  strings: StringInterner;
  subtrees: SubtreeInterner;
}

export function cacheTables(): CacheTables {
  return { strings: new StringInterner(), subtrees: new SubtreeInterner() };
}

/** Ranges (few, and their specs are read everywhere): strings shared only. */
export function cacheTransform<T extends KubeObject>(tables = cacheTables()): (obj: T) => T {
  return compactObjects<T>({ interner: tables.strings, uniqueKeys: UNIQUE_KEYS });
}

/** Requests: a spec names one of a few ranges; Ready requests' conditions differ in a few times. */
export function requestCacheTransform(tables = cacheTables()): (r: IPAMRequest) => IPAMRequest {
  return compactObjects<IPAMRequest>({
    interner: tables.strings,
    uniqueKeys: UNIQUE_KEYS,
    subtrees: tables.subtrees,
    sharedPaths: ["spec", "status.conditions", "metadata.finalizers", "metadata.labels"],
  });
}

/**
 * Records also lose their owner reference (to their request, for the cluster's garbage collector;
 * kubipam finds a record's request by spec.request): a few hundred bytes each at ten thousand records.
 */
export function allocationCacheTransform(tables = cacheTables()): (a: IPAMAllocation) => IPAMAllocation {
  const compact = compactObjects<IPAMAllocation>({
    interner: tables.strings,
    uniqueKeys: UNIQUE_KEYS,
    subtrees: tables.subtrees,
    sharedPaths: ["spec.range", "metadata.finalizers", "metadata.labels"],
  });
  return (allocation) => {
    if (allocation.metadata?.ownerReferences !== undefined) allocation.metadata.ownerReferences = undefined;
    return compact(allocation);
  };
}
