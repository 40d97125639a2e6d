// One invariant checker for every scenario (and the fault suite): reads ranges (both kinds),
// requests and allocation objects from the API server and lists every violation it finds.

import { selectorMatches } from "../api/label-selector.ts";
import {
  CLUSTER_RANGE_KIND,
  DEFAULT_CLUSTER_ALLOCATION_NAMESPACE,
  type PoolRef,
  poolKey,
  poolOfObject,
  poolOfRecord,
} from "../api/pool-ref.ts";
import type { ClusterIPAMRange, IPAMAllocation, IPAMRange, IPAMRequest, RangeObject } from "../api/types.ts";
import {
  ALLOCATION_FINALIZER,
  clusterIpamRangeResource,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../api/types.ts";
import { admitsNamespace, rangeRefOf, validateRangeSpec } from "../api/validation.ts";
import { Cidr } from "../ipam/index.ts";
import { CoreTypes, type KubeClient, type ObjectMeta } from "../runtime/kube.ts";
import { claimProblems, isClaimRecord } from "./claim-invariants.ts";
import { isDeleting, isReady, stateIs } from "./status.ts";

export interface InvariantOptions {
  /** Only these namespaces (ranges, requests and allocations in them). */
  namespaces: string[];
  /** And these ClusterIPAMRanges (with their records in the cluster allocation namespace). */
  clusterRanges?: string[];
  /** Where the records of ClusterIPAMRanges live (default kube-system). */
  clusterAllocationNamespace?: string;
  /** Every live request must be Ready (scenarios that allocate for all). */
  allReady?: boolean;
  /** No request may be left half-deleted (deletionTimestamp set, finalizer still there). */
  noneDeleting?: boolean;
}

export async function checkInvariants(client: KubeClient, options: InvariantOptions): Promise<string[]> {
  const clusterNs = options.clusterAllocationNamespace ?? DEFAULT_CLUSTER_ALLOCATION_NAMESPACE;
  const clusterScope = options.clusterRanges ?? [];
  const inScope = (o: { metadata: { namespace?: string } }) =>
    options.namespaces.includes(o.metadata.namespace ?? "");
  const poolInScope = (ref: PoolRef | undefined) =>
    ref !== undefined &&
    (ref.kind === CLUSTER_RANGE_KIND
      ? clusterScope.includes(ref.name)
      : options.namespaces.includes(ref.namespace));
  const [namespacedRanges, clusterRanges, requests, allocationList, namespaces] = await Promise.all([
    client.listAll<IPAMRange>(ipamRangeResource),
    clusterScope.length ? client.listAll<ClusterIPAMRange>(clusterIpamRangeResource) : { items: [] },
    client.listAll<IPAMRequest>(ipamRequestResource),
    client.listAll<IPAMAllocation>(ipamAllocationResource),
    clusterScope.length ? client.listAll<{ metadata: ObjectMeta }>(CoreTypes.namespace) : { items: [] },
  ]);
  const ranges: RangeObject[] = [
    ...namespacedRanges.items.map((r): RangeObject => ({ ...r, kind: "IPAMRange" })),
    ...clusterRanges.items.map((r): RangeObject => ({ ...r, kind: CLUSTER_RANGE_KIND })),
  ];
  const labelsOf = new Map(namespaces.items.map((n) => [n.metadata.name ?? "", n.metadata.labels ?? {}]));
  const allocations = allocationList.items.filter((a) => poolInScope(poolOfRecord(a, clusterNs)));
  const problems: string[] = [];
  const requestByUid = new Map(requests.items.filter(inScope).map((r) => [r.metadata.uid ?? "", r]));
  const allocationsByRange = new Map<string, IPAMAllocation[]>();
  for (const a of allocations) {
    const key = poolKey(poolOfRecord(a, clusterNs) as PoolRef);
    allocationsByRange.set(key, [...(allocationsByRange.get(key) ?? []), a]);
    if (isClaimRecord(a)) continue; // judged by claimProblems
    const request = requestByUid.get(a.spec.request.uid);
    // A cluster range's record of a request outside the namespaces in scope: not this check's business.
    if (
      !request &&
      a.spec.range.kind === CLUSTER_RANGE_KIND &&
      !options.namespaces.includes(a.spec.request.namespace)
    )
      continue;
    if (!request) problems.push(`allocation ${a.metadata.name} (${a.spec.cidr}) has no live request`);
    else if (request.status?.cidr !== a.spec.cidr) {
      problems.push(
        `allocation ${a.metadata.name} (${a.spec.cidr}) but its request has ${request.status?.cidr}`,
      );
    }
  }
  const allocationOf = new Map(allocations.map((a) => [a.spec.request.uid, a]));
  const admits = (range: RangeObject, namespace: string) =>
    range.kind === CLUSTER_RANGE_KIND
      ? selectorMatches(range.spec.namespaceSelector, labelsOf.get(namespace))
      : admitsNamespace(range.spec, range.metadata.namespace ?? "", namespace);
  problems.push(...holderProblems(requests.items.filter(inScope), ranges, allocationOf, admits));
  problems.push(...(await claimProblems(client, inScope, ranges, requests.items, allocations, clusterScope)));
  for (const r of requests.items.filter(inScope)) {
    const name = `${r.metadata.namespace}/${r.metadata.name}`;
    if (isDeleting(r)) {
      if (options.noneDeleting) problems.push(`request ${name} is still being deleted`);
      continue;
    }
    if (isReady(r) && !r.status?.cidr) problems.push(`request ${name} is Ready without a cidr`);
    if (options.allReady && !isReady(r)) {
      problems.push(`request ${name} is ${r.status?.state ?? "unprocessed"}: ${r.status?.message ?? ""}`);
    }
    // A request flagged for a status.cidr kubipam never published (state not Ready) holds nothing.
    if (r.status?.cidr && isReady(r)) {
      const a = allocationOf.get(r.metadata.uid ?? "");
      if (!a || a.spec.cidr !== r.status.cidr)
        problems.push(`request ${name} has ${r.status.cidr} without allocation`);
    }
  }
  for (const range of ranges.filter((r) => poolInScope(poolOfObject(r)))) {
    const key = poolKey(poolOfObject(range));
    if (stateIs("Deleting")(range) && isDeleting(range)) {
      const referred = requests.items.some((r) => {
        const ref = rangeRefOf(r);
        return !("ok" in ref) && poolKey(ref) === key;
      });
      if (!referred && !allocationsByRange.get(key)?.length) {
        problems.push(`range ${key} is still Deleting with nothing referring to it`);
      }
    }
    const spec = validateRangeSpec(range.spec);
    const held: Cidr[] = [];
    for (const a of allocationsByRange.get(key) ?? []) {
      const cidr = Cidr.tryParse(a.spec.cidr);
      if (cidr) held.push(cidr);
      else problems.push(`allocation ${a.metadata.name} has a malformed cidr ${JSON.stringify(a.spec.cidr)}`);
    }
    held.sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
    for (let i = 1; i < held.length; i++) {
      const a = held[i - 1] as Cidr;
      const b = held[i] as Cidr;
      if (a.overlaps(b)) problems.push(`range ${key}: ${a} overlaps ${b}`);
    }
    if (!spec.ok) continue;
    let inside = 0n;
    let total = 0n;
    for (const block of spec.blocks) total += block.size;
    for (const c of held) {
      if (spec.blocks.some((b) => b.contains(c))) inside += c.size;
      else if (!(range.status?.pendingRemovals ?? []).includes(c.toString())) {
        problems.push(`range ${key}: ${c} is outside the pool`);
      }
    }
    if (range.status && isReady(range)) {
      if (range.status.size !== total.toString())
        problems.push(`range ${key}: size ${range.status.size} != ${total}`);
      if (range.status.allocated !== inside.toString()) {
        problems.push(`range ${key}: allocated ${range.status.allocated} != ${inside}`);
      }
      if (range.status.free !== (total - inside).toString()) {
        problems.push(`range ${key}: free ${range.status.free} != ${total - inside}`);
      }
    }
  }
  return problems;
}

/**
 * What holders may never do: two requests that kubipam stands behind (Ready, with a record) holding
 * overlapping blocks of one range, a holder whose range is gone, a holder outside its range or in a
 * namespace it does not admit without saying so (conditions InRange/Admitted False), a record of a
 * holder without its finalizer.
 */
function holderProblems(
  requests: IPAMRequest[],
  ranges: RangeObject[],
  allocationOf: Map<string, IPAMAllocation>,
  admits: (range: RangeObject, namespace: string) => boolean,
): string[] {
  const problems: string[] = [];
  const rangeByKey = new Map(ranges.map((r) => [poolKey(poolOfObject(r)), r]));
  const held = new Map<string, { cidr: Cidr; name: string }[]>();
  for (const r of requests) {
    const name = `${r.metadata.namespace}/${r.metadata.name}`;
    const cidr = Cidr.tryParse(r.status?.cidr ?? "");
    const ref = rangeRefOf(r);
    if (!cidr || !isReady(r) || isDeleting(r) || "ok" in ref) continue;
    const key = poolKey(ref);
    held.set(key, [...(held.get(key) ?? []), { cidr, name }]);
    const record = allocationOf.get(r.metadata.uid ?? "");
    if (record && !record.metadata.finalizers?.includes(ALLOCATION_FINALIZER)) {
      problems.push(`allocation ${record.metadata.name} of ${name} lacks its finalizer`);
    }
    const range = rangeByKey.get(key);
    if (!range) {
      problems.push(`request ${name} holds ${cidr} of ${ref.kind} ${key}, which is gone`);
      continue;
    }
    const condition = (type: string) => r.status?.conditions?.find((c) => c.type === type)?.status;
    const spec = validateRangeSpec(range.spec);
    if (spec.ok && !spec.blocks.some((b) => b.contains(cidr)) && condition("InRange") !== "False") {
      problems.push(`request ${name} holds ${cidr} outside ${ref.kind} ${key} without InRange=False`);
    }
    if (!admits(range, r.metadata.namespace ?? "") && condition("Admitted") !== "False") {
      problems.push(
        `request ${name} holds ${cidr} of ${ref.kind} ${key}, which does not admit it, without Admitted=False`,
      );
    }
  }
  for (const [key, blocks] of held) {
    blocks.sort((x, y) => (x.cidr.start < y.cidr.start ? -1 : x.cidr.start > y.cidr.start ? 1 : 0));
    for (let i = 1; i < blocks.length; i++) {
      const a = blocks[i - 1] as { cidr: Cidr; name: string };
      const b = blocks[i] as { cidr: Cidr; name: string };
      if (a.cidr.overlaps(b.cidr)) {
        problems.push(`range ${key}: Ready requests ${a.name} (${a.cidr}) and ${b.name} (${b.cidr}) overlap`);
      }
    }
  }
  return problems;
}
