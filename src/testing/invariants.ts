// One invariant checker for every scenario (and the fault suite): reads ranges, requests and
// allocation objects from the API server and lists every violation it finds.

import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../api/types.ts";
import { ipamAllocationResource, ipamRangeResource, ipamRequestResource } from "../api/types.ts";
import { validateRangeSpec } from "../api/validation.ts";
import { Cidr } from "../ipam/index.ts";
import type { KubeClient } from "../runtime/kube.ts";
import { isDeleting, isReady } from "./status.ts";

export interface InvariantOptions {
  /** Only these namespaces (ranges, requests and allocations in them). */
  namespaces: string[];
  /** Every live request must be Ready (scenarios that allocate for all). */
  allReady?: boolean;
  /** No request may be left half-deleted (deletionTimestamp set, finalizer still there). */
  noneDeleting?: boolean;
}

export async function checkInvariants(client: KubeClient, options: InvariantOptions): Promise<string[]> {
  const inScope = (o: { metadata: { namespace?: string } }) =>
    options.namespaces.includes(o.metadata.namespace ?? "");
  const [ranges, requests, allocations] = await Promise.all([
    client.listAll<IPAMRange>(ipamRangeResource),
    client.listAll<IPAMRequest>(ipamRequestResource),
    client.listAll<IPAMAllocation>(ipamAllocationResource),
  ]);
  const problems: string[] = [];
  const requestByUid = new Map(requests.items.filter(inScope).map((r) => [r.metadata.uid ?? "", r]));
  const allocationsByRange = new Map<string, IPAMAllocation[]>();
  for (const a of allocations.items.filter(inScope)) {
    const key = `${a.metadata.namespace}/${a.spec.range.name}`;
    allocationsByRange.set(key, [...(allocationsByRange.get(key) ?? []), a]);
    const request = requestByUid.get(a.spec.request.uid);
    if (!request) problems.push(`allocation ${a.metadata.name} (${a.spec.cidr}) has no live request`);
    else if (request.status?.cidr !== a.spec.cidr) {
      problems.push(
        `allocation ${a.metadata.name} (${a.spec.cidr}) but its request has ${request.status?.cidr}`,
      );
    }
  }
  const allocationOf = new Map(allocations.items.filter(inScope).map((a) => [a.spec.request.uid, a]));
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
    if (r.status?.cidr) {
      const a = allocationOf.get(r.metadata.uid ?? "");
      if (!a || a.spec.cidr !== r.status.cidr)
        problems.push(`request ${name} has ${r.status.cidr} without allocation`);
    }
  }
  for (const range of ranges.items.filter(inScope)) {
    const key = `${range.metadata.namespace}/${range.metadata.name}`;
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
