// The ranges `kubectl ipam` looks at, of both kinds: resolving a range argument (`name`,
// `iprange/name`, `ciprange/name`, `clusteripamrange/name`, …), listing ClusterIPAMRanges and reading a
// pool's allocation records (an IPAMRange's in its namespace, a ClusterIPAMRange's in the cluster
// allocation namespace). Read-only.

import { CLUSTER_RANGE_KIND, type PoolRef } from "../api/pool-ref.ts";
import {
  type ClusterIPAMRange,
  clusterIpamRangeResource,
  type IPAMAllocation,
  type IPAMRange,
  ipamAllocationResource,
  ipamRangeResource,
  RANGE_KIND_LABEL,
  RANGE_LABEL,
  type RangeObject,
} from "../api/types.ts";
import { rangeLabelValue } from "../api/validation.ts";
import { ApiError, type KubeClient } from "../runtime/kube.ts";
import { allocationsOfPool } from "./views/index.ts";

const CLUSTER_PREFIXES = [
  "clusteripamrange/",
  "clusteripamranges/",
  "ciprange/",
  "clusteripamrange.ipam.mandelsoft.org/",
];
const NAMESPACED_PREFIXES = ["ipamrange/", "ipamranges/", "iprange/", "ipamrange.ipam.mandelsoft.org/"];

export class RangeNotFound extends Error {}

async function getOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * The range an argument names: `<kind>/<name>` says the kind (kubectl's resource names and short
 * names, case-insensitive); a bare name is the IPAMRange of that name in `namespace`, else the
 * ClusterIPAMRange of that name (a cluster range is addressed by its name alone).
 */
export async function resolveRange(client: KubeClient, namespace: string, arg: string): Promise<RangeObject> {
  const lower = arg.toLowerCase();
  const clusterPrefix = CLUSTER_PREFIXES.find((p) => lower.startsWith(p));
  const namespacedPrefix = NAMESPACED_PREFIXES.find((p) => lower.startsWith(p));
  const name = arg.slice((clusterPrefix ?? namespacedPrefix ?? "").length);
  if (!clusterPrefix) {
    const range = await getOrUndefined(() => client.get<IPAMRange>(ipamRangeResource, name, { namespace }));
    if (range) return { ...range, kind: "IPAMRange" };
    if (namespacedPrefix) throw new RangeNotFound(`IPAMRange ${namespace}/${name} not found`);
  }
  const cluster = await getOrUndefined(() => client.get<ClusterIPAMRange>(clusterIpamRangeResource, name));
  if (cluster) return { ...cluster, kind: CLUSTER_RANGE_KIND };
  throw new RangeNotFound(
    clusterPrefix
      ? `ClusterIPAMRange ${name} not found`
      : `IPAMRange ${namespace}/${name} not found, nor a ClusterIPAMRange ${name}`,
  );
}

/** Every ClusterIPAMRange; none (with a warning) if the user may not list them or the CRD is missing. */
export async function listClusterRanges(
  client: KubeClient,
  warn: (text: string) => void,
): Promise<ClusterIPAMRange[]> {
  try {
    const list = await client.listAll<ClusterIPAMRange>(clusterIpamRangeResource);
    return list.items.map((r) => ({ ...r, kind: CLUSTER_RANGE_KIND }));
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 403 && err.status !== 404)) throw err;
    warn(`warning: cannot list ClusterIPAMRanges (${err.status}); showing IPAMRanges only\n`);
    return [];
  }
}

/** The records of every ClusterIPAMRange (in the cluster allocation namespace); none if not allowed. */
export async function clusterRecords(
  client: KubeClient,
  clusterNs: string,
  warn: (text: string) => void,
  rangeName?: string,
): Promise<IPAMAllocation[]> {
  const selector = [
    `${RANGE_KIND_LABEL}=${CLUSTER_RANGE_KIND}`,
    ...(rangeName ? [`${RANGE_LABEL}=${rangeLabelValue(rangeName)}`] : []),
  ].join(",");
  try {
    const list = await client.listAll<IPAMAllocation>(ipamAllocationResource, {
      namespace: clusterNs,
      labelSelector: selector,
    });
    return list.items;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403) throw err;
    warn(`warning: cannot list IPAMAllocations in ${clusterNs}: ClusterIPAMRange usage is not shown\n`);
    return [];
  }
}

/** The allocation records of one pool of either kind. */
export async function poolRecords(
  client: KubeClient,
  ref: PoolRef,
  clusterNs: string,
  warn: (text: string) => void,
): Promise<IPAMAllocation[]> {
  const items =
    ref.kind === CLUSTER_RANGE_KIND
      ? await clusterRecords(client, clusterNs, warn, ref.name)
      : (
          await client.listAll<IPAMAllocation>(ipamAllocationResource, {
            namespace: ref.namespace,
            labelSelector: `${RANGE_LABEL}=${rangeLabelValue(ref.name)}`,
          })
        ).items;
  return allocationsOfPool(ref, items, clusterNs);
}
