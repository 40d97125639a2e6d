// getRange: a range with its state and usage as numbers.

import { clusterIpamRangeResource, type IPAMRange, ipamRangeResource } from "../api/types.ts";
import { isNotFound, type ResourceType } from "../runtime/kube.ts";
import { type ConnectionOptions, withClient } from "./connection.ts";
import { type RangeKind, type RangeUsage, rangeUsage } from "./spec.ts";

/** Cluster-scoped ranges (the API's descriptor, exported here too for callers of kubipam/client). */
export { clusterIpamRangeResource };

export interface GetRangeOptions extends ConnectionOptions {
  name: string;
  /** Required for an IPAMRange. */
  namespace?: string;
  kind?: RangeKind;
  signal?: AbortSignal;
}

export interface RangeInfo {
  range: IPAMRange;
  /** status.state: `Ready`, `Invalid`, `Deleting`, or undefined before the controller saw it. */
  state: string | undefined;
  message: string | undefined;
  /** Exact address counts from status, undefined before the controller wrote them. */
  usage: RangeUsage | undefined;
}

/** Reads a range; resolves undefined when it does not exist. */
export function getRange(options: GetRangeOptions): Promise<RangeInfo | undefined> {
  const kind = options.kind ?? "IPAMRange";
  if (typeof options.name !== "string" || options.name === "")
    throw new TypeError("name must be a non-empty string");
  if (kind === "IPAMRange" && !options.namespace)
    throw new TypeError("namespace is required for an IPAMRange");
  if (kind === "ClusterIPAMRange" && options.namespace) {
    throw new TypeError("namespace must be empty for a ClusterIPAMRange (it is cluster-scoped)");
  }
  if (kind !== "IPAMRange" && kind !== "ClusterIPAMRange") {
    throw new TypeError(`kind must be IPAMRange or ClusterIPAMRange, not ${JSON.stringify(kind)}`);
  }
  const type: ResourceType = kind === "IPAMRange" ? ipamRangeResource : clusterIpamRangeResource;
  return withClient(options, async (client) => {
    let range: IPAMRange;
    try {
      range = await client.get<IPAMRange>(type, options.name, {
        namespace: options.namespace,
        signal: options.signal,
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return { range, state: range.status?.state, message: range.status?.message, usage: rangeUsage(range) };
  });
}
