// The invariant checker's part for Cluster API claims (when Cluster API's CRDs are served): every claim
// kubipam published has exactly one record and one IPAddress, both saying its address; a record of a
// claim has a live claim that published it; Ready claims have their address; and no claim's address
// overlaps another claim's, a Ready request's block, an exclusion or the gateway of its pool.

import {
  type IPAddress,
  type IPAddressClaim,
  ipAddressClaimResource,
  ipAddressResource,
  publishedAddressOf,
} from "../api/cluster-api.ts";
import type { IPAMAllocation, IPAMRequest, RangeObject } from "../api/types.ts";
import { isInvalid, rangeRefOf, validateRangeSpec } from "../api/validation.ts";
import { Cidr } from "../ipam/index.ts";
import { isNotFound, type KubeClient, type KubeObject } from "../runtime/kube.ts";
import { isDeleting, isReady } from "./status.ts";

const GROUP = "ipam.mandelsoft.org";

interface Held {
  cidr: Cidr;
  what: string;
}

async function listOrNone<T extends KubeObject>(
  client: KubeClient,
  type: Parameters<KubeClient["listAll"]>[0],
): Promise<T[]> {
  try {
    return (await client.listAll<T>(type)).items;
  } catch (err) {
    if (isNotFound(err)) return []; // Cluster API not installed: no claims
    throw err;
  }
}

/** Whether a record is a claim's (records without a holder kind are requests'). */
export function isClaimRecord(record: IPAMAllocation): boolean {
  return record.spec?.request?.kind === "IPAddressClaim";
}

interface Scope {
  inScope: (o: { metadata: { namespace?: string } }) => boolean;
  /** The ClusterIPAMRanges in scope (claims on others have records out of scope). */
  clusterRanges: readonly string[];
}

export async function claimProblems(
  client: KubeClient,
  inScope: Scope["inScope"],
  ranges: RangeObject[],
  requests: IPAMRequest[],
  /** The records of the pools in scope (wherever they live). */
  allocations: IPAMAllocation[],
  clusterRanges: readonly string[],
): Promise<string[]> {
  const scope: Scope = { inScope, clusterRanges };
  const claims = (await listOrNone<IPAddressClaim>(client, ipAddressClaimResource)).filter(inScope);
  const addresses = (await listOrNone<IPAddress>(client, ipAddressResource)).filter(inScope);
  const recordsOf = new Map<string, IPAMAllocation[]>();
  for (const a of allocations.filter(isClaimRecord)) {
    recordsOf.set(a.spec.request.uid, [...(recordsOf.get(a.spec.request.uid) ?? []), a]);
  }
  const problems = recordProblems(scope, claims, allocations.filter(isClaimRecord));
  const addressOf = new Map(addresses.map((a) => [`${a.metadata.namespace}/${a.metadata.name}`, a]));
  const held = new Map<string, Held[]>();
  const hold = (pool: string, h: Held) => held.set(pool, [...(held.get(pool) ?? []), h]);
  for (const claim of claims) {
    const key = `${claim.metadata.namespace}/${claim.metadata.name}`;
    const found = claimCheck(scope, claim, recordsOf.get(claim.metadata.uid ?? "") ?? [], addressOf.get(key));
    problems.push(...found.problems);
    if (found.held) hold(found.held.pool, { cidr: found.held.cidr, what: `claim ${key}` });
  }
  if (held.size === 0) return problems;
  for (const r of requests.filter(inScope)) {
    const ref = rangeRefOf(r);
    const cidr = Cidr.tryParse(r.status?.cidr ?? "");
    if (!cidr || !isReady(r) || isDeleting(r) || isInvalid(ref)) continue;
    const pool = ref.kind === "ClusterIPAMRange" ? ref.name : `${ref.namespace}/${ref.name}`;
    if (held.has(pool)) hold(pool, { cidr, what: `request ${r.metadata.namespace}/${r.metadata.name}` });
  }
  problems.push(...exclusionProblems(ranges, held));
  for (const [pool, list] of held) problems.push(...overlaps(pool, list));
  return problems;
}

/** Every record of a claim has a live claim that published its block. */
function recordProblems(scope: Scope, claims: IPAddressClaim[], records: IPAMAllocation[]): string[] {
  const problems: string[] = [];
  const claimByUid = new Map(claims.map((c) => [c.metadata.uid ?? "", c]));
  for (const a of records) {
    const claim = claimByUid.get(a.spec.request.uid);
    // A cluster range's record of a claim outside the namespaces in scope: not this check's business.
    if (!claim && !scope.inScope({ metadata: { namespace: a.spec.request.namespace } })) continue;
    if (!claim) problems.push(`allocation ${a.metadata.name} (${a.spec.cidr}) has no live claim`);
    else if (publishedAddressOf(claim) !== a.spec.cidr) {
      problems.push(
        `allocation ${a.metadata.name} (${a.spec.cidr}) but its claim published ${publishedAddressOf(claim)}`,
      );
    }
  }
  return problems;
}

/** One claim: others' untouched; kubipam's Ready ones with their published address, one record and their IPAddress. */
function claimCheck(
  scope: Scope,
  claim: IPAddressClaim,
  records: IPAMAllocation[],
  address: IPAddress | undefined,
): { problems: string[]; held?: { pool: string; cidr: Cidr } } {
  const key = `${claim.metadata.namespace}/${claim.metadata.name}`;
  const ref = claim.spec?.poolRef;
  if (ref?.apiGroup !== GROUP) {
    const touched =
      (claim.status?.conditions?.length ?? 0) > 0 ||
      claim.metadata.finalizers?.some((f) => f.startsWith("ipam.cluster.x-k8s.io/"));
    return { problems: touched ? [`claim ${key} of another provider was touched`] : [] };
  }
  const published = publishedAddressOf(claim);
  const ready = claim.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
  if (!published) return { problems: ready ? [`claim ${key} is Ready without a published address`] : [] };
  // Like a request: a claim kubipam stands behind is Ready; one flagged for an address kubipam never
  // published (or one on its way to Ready) holds nothing yet.
  if (
    !ready ||
    isDeleting(claim) ||
    (ref.kind === "ClusterIPAMRange" && !scope.clusterRanges.includes(ref.name))
  ) {
    return { problems: [] };
  }
  const problems: string[] = [];
  if (records.length !== 1 || records[0]?.spec.cidr !== published) {
    problems.push(
      `claim ${key} published ${published} with records [${records.map((r) => r.spec.cidr).join(", ")}]`,
    );
  }
  const cidr = Cidr.tryParse(published);
  if (!address || !cidr || address.spec.address !== cidr.addressString()) {
    problems.push(`claim ${key} is Ready with ${published} but its IPAddress says ${address?.spec.address}`);
  }
  if (
    address &&
    !address.metadata.ownerReferences?.some((o) => o.uid === claim.metadata.uid && o.controller)
  ) {
    problems.push(`IPAddress ${key} is not controlled by its claim`);
  }
  const pool = ref.kind === "ClusterIPAMRange" ? ref.name : `${claim.metadata.namespace}/${ref.name}`;
  return { problems, ...(cidr ? { held: { pool, cidr } } : {}) };
}

/** No claim's address lies in an exclusion or the gateway of its pool. */
function exclusionProblems(ranges: RangeObject[], held: Map<string, Held[]>): string[] {
  const problems: string[] = [];
  for (const range of ranges) {
    const pool = range.metadata.namespace
      ? `${range.metadata.namespace}/${range.metadata.name}`
      : (range.metadata.name ?? "");
    const claimsHeld = (held.get(pool) ?? []).filter((x) => x.what.startsWith("claim "));
    const spec = validateRangeSpec(range.spec);
    if (claimsHeld.length === 0 || !spec.ok) continue;
    for (const h of claimsHeld) {
      for (const e of spec.exclusions) {
        if (h.cidr.start <= e.last && e.first <= h.cidr.end)
          problems.push(`${h.what} holds ${h.cidr}, excluded by ${e.entry}`);
      }
    }
  }
  return problems;
}

function overlaps(pool: string, list: Held[]): string[] {
  const problems: string[] = [];
  const sorted = [...list].sort((x, y) =>
    x.cidr.start < y.cidr.start ? -1 : x.cidr.start > y.cidr.start ? 1 : 0,
  );
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] as Held;
    const b = sorted[i] as Held;
    if (a.cidr.overlaps(b.cidr))
      problems.push(`pool ${pool}: ${a.what} (${a.cidr}) and ${b.what} (${b.cidr}) overlap`);
  }
  return problems;
}
