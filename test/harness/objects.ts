// Test objects for unit tests: range `ns/r` (uid `range-uid`), requests in `ns` drawing from it, and
// the records that bind a request's block. One set of builders so the files agree on names and uids.

import {
  API_VERSION,
  FINALIZER,
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRangeSpec,
  type IPAMRangeStatus,
  type IPAMRequest,
  type IPAMRequestSpec,
  type IPAMRequestStatus,
  type ObjectMeta,
} from "../../src/api/types.ts";
import { allocationName } from "../../src/api/validation.ts";

/** Range `ns/r`, finalized; `metadata` adds to (or replaces) its metadata. */
export function rangeObject(
  spec: IPAMRangeSpec = { ranges: ["10.0.0.0/30"] },
  options: { metadata?: Partial<ObjectMeta>; status?: IPAMRangeStatus } = {},
): IPAMRange {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMRange",
    metadata: {
      name: "r",
      namespace: "ns",
      uid: "range-uid",
      generation: 1,
      finalizers: [FINALIZER],
      ...options.metadata,
    },
    spec,
    ...(options.status ? { status: options.status } : {}),
  };
}

/**
 * Request `ns/<name>` (uid `<name>-uid`, resourceVersion 7) on range `r` unless `spec` says otherwise.
 * It carries the finalizer unless `finalizers` is empty (then it has none yet).
 */
export function requestObject(
  name: string,
  spec: Partial<IPAMRequestSpec> = {},
  status?: IPAMRequestStatus,
  { finalizers = [FINALIZER] }: { finalizers?: string[] } = {},
): IPAMRequest {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMRequest",
    metadata: {
      name,
      namespace: "ns",
      uid: `${name}-uid`,
      generation: 1,
      resourceVersion: "7",
      ...(finalizers.length > 0 ? { finalizers } : {}),
    },
    spec: { ipam: { name: "r" }, ...spec },
    ...(status ? { status } : {}),
  };
}

/** The record of `cidr` in range `r`, held by `holder`. */
export function recordObject(cidr: string, holder: IPAMRequest, uid = `${cidr}-uid`): IPAMAllocation {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMAllocation",
    metadata: { name: allocationName("r", cidr), namespace: "ns", uid },
    spec: {
      range: { name: "r", uid: "range-uid" },
      cidr,
      request: { namespace: "ns", name: holder.metadata.name ?? "", uid: holder.metadata.uid ?? "" },
    },
  };
}
