// Consent: whether a range admits holders from a namespace. An IPAMRange admits its own namespace and
// those in spec.allowedNamespaces; a ClusterIPAMRange the namespaces whose labels (Namespace cache)
// match its spec.namespaceSelector. Both are read afresh on every decision, so a withdrawn consent
// shows on the next reconcile of the holder.

import { selectorMatches } from "../api/label-selector.ts";
import { CLUSTER_RANGE_KIND, describePool, type PoolRef } from "../api/pool-ref.ts";
import type { RangeObject } from "../api/types.ts";
import { admitsNamespace } from "../api/validation.ts";
import type { IpamControllerDeps } from "./context.ts";

export function admits(d: IpamControllerDeps, ref: PoolRef, range: RangeObject, namespace: string): boolean {
  if (range.kind !== CLUSTER_RANGE_KIND) return admitsNamespace(range.spec, ref.namespace, namespace);
  const labels = d.namespaces?.get(namespace)?.metadata.labels;
  // The API server labels every namespace with its name; a namespace not (yet) cached has that one.
  return selectorMatches(
    range.spec.namespaceSelector,
    labels ?? { "kubernetes.io/metadata.name": namespace },
  );
}

/** Why a namespace may not use a range, and how to change that. */
export function notAdmittedMessage(ref: PoolRef, namespace: string | undefined): string {
  const how =
    ref.kind === CLUSTER_RANGE_KIND
      ? "its spec.namespaceSelector does not match the namespace's labels"
      : "add it to the range's spec.allowedNamespaces";
  return `${describePool(ref)} does not admit requests from namespace ${namespace}: ${how}`;
}

/** Whether two label sets are equal (a namespace's labels decide a ClusterIPAMRange's consent). */
export function sameLabels(
  a: Record<string, string> | undefined,
  b: Record<string, string> | undefined,
): boolean {
  const x = Object.entries(a ?? {});
  return x.length === Object.keys(b ?? {}).length && x.every(([k, v]) => b?.[k] === v);
}
