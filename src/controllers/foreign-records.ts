// Records of ClusterIPAMRanges outside this controller's cluster allocation namespace: written by a
// kubipam controller started with another `--cluster-allocation-namespace`. They guard blocks this
// controller cannot see, so they are never deleted nor stripped here — only reported.

import { CLUSTER_RANGE_KIND } from "../api/pool-ref.ts";
import type { IPAMAllocation } from "../api/types.ts";
import { objectKey } from "../runtime/kube.ts";
import type { Context } from "./context.ts";
import { ALLOCATIONS_BY_REQUEST } from "./indexes.ts";

/** Whether the record names a ClusterIPAMRange but lives outside the cluster allocation namespace. */
export function isForeignClusterRecord(
  allocation: IPAMAllocation,
  clusterAllocationNamespace: string,
): boolean {
  return (
    allocation.spec?.range?.kind === CLUSTER_RANGE_KIND &&
    allocation.metadata.namespace !== clusterAllocationNamespace
  );
}

/** Logs an error and emits a Warning event on the record; it stays as it is. */
export function reportForeignClusterRecord(c: Context, allocation: IPAMAllocation): void {
  const namespace = c.ledger.clusterAllocationNamespace;
  const message =
    `record of ClusterIPAMRange ${allocation.spec.range.name} outside the cluster allocation namespace ` +
    `${namespace}: another kubipam controller seems to run with a different --cluster-allocation-namespace ` +
    "(every controller of a cluster must share it); left alone";
  c.d.log.error(message, { allocation: objectKey(allocation) });
  c.d.events.emit(allocation, "Warning", "ForeignClusterAllocationNamespace", message);
}

/** A holder's records in the cache (by the request index), without another controller's. */
export function ownRecordsOf(c: Context, holderUid: string): IPAMAllocation[] {
  return c.d.allocations
    .byIndex(ALLOCATIONS_BY_REQUEST, holderUid)
    .filter((a) => !isForeignClusterRecord(a, c.ledger.clusterAllocationNamespace));
}
