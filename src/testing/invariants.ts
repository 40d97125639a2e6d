// One invariant checker for every scenario (and the fault suite): reads ranges, requests and
// allocation objects from the API server and lists every violation it finds.

import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../api/types.ts";
import {
  ALLOCATION_FINALIZER,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../api/types.ts";
import { admitsNamespace, rangeRefOf, type ValidRangeSpec, validateRangeSpec } from "../api/validation.ts";
import { Allocator, Cidr } from "../ipam/index.ts";
import type { KubeClient } from "../runtime/kube.ts";
import { isDeleting, isReady, stateIs } from "./status.ts";

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
  problems.push(...holderProblems(requests.items.filter(inScope), ranges.items, allocationOf));
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
  for (const range of ranges.items.filter(inScope)) {
    const key = `${range.metadata.namespace}/${range.metadata.name}`;
    if (stateIs("Deleting")(range) && isDeleting(range)) {
      const referred = requests.items.some((r) => {
        const ref = rangeRefOf(r);
        return !("ok" in ref) && `${ref.namespace}/${ref.name}` === key;
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
      problems.push(...freeProblems(key, range, spec, held, total - inside));
    }
  }
  return problems;
}

/**
 * size = allocated + free + excluded + cooling: the excluded addresses not under a holder are what the
 * engine computes from the spec; cooling addresses are the controller's word (they depend on time).
 */
function freeProblems(
  key: string,
  range: IPAMRange,
  spec: ValidRangeSpec,
  held: Cidr[],
  unallocated: bigint,
): string[] {
  const status = range.status ?? {};
  let excluded = 0n;
  const family = spec.family ?? held[0]?.family;
  if (family !== undefined && spec.exclusions.length > 0) {
    const inPool = held.filter((c) => c.family === family);
    const { allocator } = Allocator.rebuild(
      { family, blocks: spec.blocks, exclusions: spec.exclusions },
      inPool,
      { keepOutside: true },
    );
    excluded = allocator.usage().excluded;
  }
  const problems: string[] = [];
  if ((status.excludedAddresses ?? "0") !== excluded.toString()) {
    problems.push(`range ${key}: excludedAddresses ${status.excludedAddresses} != ${excluded}`);
  }
  const cooling = BigInt(status.coolingAddresses ?? "0");
  if (status.free !== (unallocated - excluded - cooling).toString()) {
    problems.push(
      `range ${key}: free ${status.free} != ${unallocated - excluded - cooling} (excluded ${excluded}, cooling ${cooling})`,
    );
  }
  return problems;
}

/** When the range's spec was last changed (managedFields time of a manager that owns spec fields). */
function specChangedAt(range: IPAMRange): string | undefined {
  let latest: string | undefined;
  for (const entry of (range.metadata.managedFields ?? []) as ManagedFieldsEntry[]) {
    if (entry.subresource || !entry.time || !JSON.stringify(entry.fieldsV1 ?? {}).includes('"f:spec"'))
      continue;
    if (!latest || entry.time > latest) latest = entry.time;
  }
  return latest;
}

interface ManagedFieldsEntry {
  time?: string;
  subresource?: string;
  fieldsV1?: unknown;
}

/**
 * A holder over an exclusion (or the gateway) must predate it: its record is not younger than the
 * range's last spec change (to the second), and it says so (InRange=False, listed as pending removal).
 */
function exclusionProblems(
  name: string,
  request: IPAMRequest,
  cidr: Cidr,
  range: IPAMRange,
  spec: ValidRangeSpec,
  record: IPAMAllocation | undefined,
): string[] {
  const exclusion = spec.exclusions.find((e) => e.first <= cidr.end && cidr.start <= e.last);
  if (!exclusion) return [];
  const key = `${range.metadata.namespace}/${range.metadata.name}`;
  const problems: string[] = [];
  const changed = specChangedAt(range);
  const created = record?.metadata.creationTimestamp;
  if (created && changed && created > changed) {
    problems.push(
      `request ${name} holds ${cidr} over excluded ${exclusion.entry} of IPAMRange ${key}, allocated after the exclusion`,
    );
  }
  const inRange = request.status?.conditions?.find((c) => c.type === "InRange");
  if (inRange?.status !== "False") {
    problems.push(
      `request ${name} holds ${cidr} over excluded ${exclusion.entry} of IPAMRange ${key} without InRange=False`,
    );
  }
  if (isReady(range) && !(range.status?.pendingRemovals ?? []).includes(cidr.toString())) {
    problems.push(`range ${key}: ${cidr} over excluded ${exclusion.entry} is not among its pendingRemovals`);
  }
  return problems;
}

/**
 * What holders may never do: two requests that kubipam stands behind (Ready, with a record) holding
 * overlapping blocks of one range, a holder whose range is gone, a holder outside its range or in a
 * namespace it does not admit without saying so (conditions InRange/Admitted False), a holder over an
 * exclusion or the gateway that does not predate it, a record of a holder without its finalizer.
 */
function holderProblems(
  requests: IPAMRequest[],
  ranges: IPAMRange[],
  allocationOf: Map<string, IPAMAllocation>,
): string[] {
  const problems: string[] = [];
  const rangeByKey = new Map(ranges.map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]));
  const held = new Map<string, { cidr: Cidr; name: string }[]>();
  for (const r of requests) {
    const name = `${r.metadata.namespace}/${r.metadata.name}`;
    const cidr = Cidr.tryParse(r.status?.cidr ?? "");
    const ref = rangeRefOf(r);
    if (!cidr || !isReady(r) || isDeleting(r) || "ok" in ref) continue;
    const key = `${ref.namespace}/${ref.name}`;
    held.set(key, [...(held.get(key) ?? []), { cidr, name }]);
    const record = allocationOf.get(r.metadata.uid ?? "");
    if (record && !record.metadata.finalizers?.includes(ALLOCATION_FINALIZER)) {
      problems.push(`allocation ${record.metadata.name} of ${name} lacks its finalizer`);
    }
    const range = rangeByKey.get(key);
    if (!range) {
      problems.push(`request ${name} holds ${cidr} of IPAMRange ${key}, which is gone`);
      continue;
    }
    const condition = (type: string) => r.status?.conditions?.find((c) => c.type === type)?.status;
    const spec = validateRangeSpec(range.spec);
    if (spec.ok && !spec.blocks.some((b) => b.contains(cidr)) && condition("InRange") !== "False") {
      problems.push(`request ${name} holds ${cidr} outside IPAMRange ${key} without InRange=False`);
    }
    if (spec.ok) problems.push(...exclusionProblems(name, r, cidr, range, spec, record));
    if (
      !admitsNamespace(range.spec, ref.namespace, r.metadata.namespace ?? "") &&
      condition("Admitted") !== "False"
    ) {
      problems.push(
        `request ${name} holds ${cidr} of IPAMRange ${key}, which does not admit it, without Admitted=False`,
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
