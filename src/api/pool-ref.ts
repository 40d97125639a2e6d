// A pool reference: which range a request, a record or a ledger entry is about — a namespaced
// IPAMRange or a cluster-scoped ClusterIPAMRange — and the one key by which everything (ledger, queues,
// indexes, metrics) names it. Where a pool's IPAMAllocation records live and what they are called is
// decided here too (record names: recordName in validation.ts).

export const RANGE_KIND = "IPAMRange";
export const CLUSTER_RANGE_KIND = "ClusterIPAMRange";
export type PoolKind = typeof RANGE_KIND | typeof CLUSTER_RANGE_KIND;
export const POOL_KINDS: readonly PoolKind[] = [RANGE_KIND, CLUSTER_RANGE_KIND];

export interface PoolRef {
  readonly kind: PoolKind;
  /** The range's namespace; always empty for a ClusterIPAMRange. */
  readonly namespace: string;
  readonly name: string;
}

export function isPoolKind(value: unknown): value is PoolKind {
  return value === RANGE_KIND || value === CLUSTER_RANGE_KIND;
}

/** A pool reference; the namespace of a cluster range is dropped (it has none). */
export function poolRef(kind: PoolKind, namespace: string, name: string): PoolRef {
  return { kind, namespace: kind === CLUSTER_RANGE_KIND ? "" : namespace, name };
}

export function rangePool(namespace: string, name: string): PoolRef {
  return { kind: RANGE_KIND, namespace, name };
}

export function clusterPool(name: string): PoolRef {
  return { kind: CLUSTER_RANGE_KIND, namespace: "", name };
}

export function isClusterPool(ref: PoolRef): boolean {
  return ref.kind === CLUSTER_RANGE_KIND;
}

/**
 * The key of a pool: the range object's informer key — `namespace/name` for an IPAMRange, `name`
 * for a ClusterIPAMRange (cluster-scoped objects have no namespace). The two can never be equal: an
 * IPAMRange key always has a `/`, a name never does.
 */
export function poolKey(ref: PoolRef): string {
  return ref.kind === CLUSTER_RANGE_KIND ? ref.name : `${ref.namespace}/${ref.name}`;
}

/** The pool a key made by poolKey names. */
export function parsePoolKey(key: string): PoolRef {
  const i = key.indexOf("/");
  return i < 0 ? clusterPool(key) : rangePool(key.slice(0, i), key.slice(i + 1));
}

export function samePool(a: PoolRef, b: PoolRef): boolean {
  return a.kind === b.kind && a.namespace === b.namespace && a.name === b.name;
}

/** How messages name a pool: `IPAMRange <ns>/<name>` or `ClusterIPAMRange <name>`. */
export function describePool(ref: PoolRef): string {
  return `${ref.kind} ${poolKey(ref)}`;
}

/** The pool a range object is (a cluster range by its kind, everything else an IPAMRange). */
export function poolOfObject(object: {
  kind?: string;
  metadata: { namespace?: string; name?: string };
}): PoolRef {
  const name = object.metadata.name ?? "";
  return object.kind === CLUSTER_RANGE_KIND
    ? clusterPool(name)
    : rangePool(object.metadata.namespace ?? "", name);
}

/**
 * Where the records of a pool live: an IPAMRange's in its own namespace; every ClusterIPAMRange's in
 * one namespace shared by all kubipam controllers of the cluster (uniqueness by name needs one place).
 */
export function recordNamespace(ref: PoolRef, clusterAllocationNamespace: string): string {
  return ref.kind === CLUSTER_RANGE_KIND ? clusterAllocationNamespace : ref.namespace;
}

/** The `spec.range` of a record, as a pool: its kind (absent: IPAMRange, records before kinds existed). */
export function poolOfRecord(
  record: { metadata: { namespace?: string }; spec?: { range?: { name?: string; kind?: string } } },
  clusterAllocationNamespace: string,
): PoolRef | undefined {
  const range = record.spec?.range;
  if (!range?.name) return undefined;
  const kind = range.kind ?? RANGE_KIND;
  if (kind === RANGE_KIND) return rangePool(record.metadata.namespace ?? "", range.name);
  // A cluster range's record counts only where every controller looks for it: elsewhere the API
  // server would not keep two of them apart.
  if (kind === CLUSTER_RANGE_KIND && record.metadata.namespace === clusterAllocationNamespace) {
    return clusterPool(range.name);
  }
  return undefined;
}

/** Default namespace of the records of cluster ranges: the allocation fence's. */
export const DEFAULT_CLUSTER_ALLOCATION_NAMESPACE = "kube-system";
