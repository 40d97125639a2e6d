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

export async function claimProblems(
  client: KubeClient,
  inScope: (o: { metadata: { namespace?: string } }) => boolean,
  ranges: RangeObject[],
  requests: IPAMRequest[],
  /** The records of the pools in scope (wherever they live). */
  allocations: IPAMAllocation[],
  /** The ClusterIPAMRanges in scope (claims on others have records out of scope). */
  clusterRanges: readonly string[],
): Promise<string[]> {
  const claims = (await listOrNone<IPAddressClaim>(client, ipAddressClaimResource)).filter(inScope);
  const addresses = (await listOrNone<IPAddress>(client, ipAddressResource)).filter(inScope);
  const problems: string[] = [];
  const claimByUid = new Map(claims.map((c) => [c.metadata.uid ?? "", c]));
  const recordsOf = new Map<string, IPAMAllocation[]>();
  for (const a of allocations.filter(isClaimRecord)) {
    recordsOf.set(a.spec.request.uid, [...(recordsOf.get(a.spec.request.uid) ?? []), a]);
    const claim = claimByUid.get(a.spec.request.uid);
    // A cluster range's record of a claim outside the namespaces in scope: not this check's business.
    if (!claim && !inScope({ metadata: { namespace: a.spec.request.namespace } })) continue;
    if (!claim) problems.push(`allocation ${a.metadata.name} (${a.spec.cidr}) has no live claim`);
    else if (publishedAddressOf(claim) !== a.spec.cidr) {
      problems.push(
        `allocation ${a.metadata.name} (${a.spec.cidr}) but its claim published ${publishedAddressOf(claim)}`,
      );
    }
  }
  const addressOf = new Map(addresses.map((a) => [`${a.metadata.namespace}/${a.metadata.name}`, a]));
  const held = new Map<string, Held[]>();
  const hold = (pool: string, h: Held) => held.set(pool, [...(held.get(pool) ?? []), h]);
  for (const claim of claims) {
    const key = `${claim.metadata.namespace}/${claim.metadata.name}`;
    const ref = claim.spec?.poolRef;
    const ours = ref?.apiGroup === GROUP;
    const published = publishedAddressOf(claim);
    const ready = claim.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    if (!ours) {
      if (
        claim.status?.conditions?.length ||
        claim.metadata.finalizers?.some((f) => f.startsWith("ipam.cluster.x-k8s.io/"))
      ) {
        problems.push(`claim ${key} of another provider was touched`);
      }
      continue;
    }
    if (ready && !published) problems.push(`claim ${key} is Ready without a published address`);
    if (!published || isDeleting(claim)) continue;
    if (ref?.kind === "ClusterIPAMRange" && !clusterRanges.includes(ref.name)) continue;
    const records = recordsOf.get(claim.metadata.uid ?? "") ?? [];
    if (records.length !== 1 || records[0]?.spec.cidr !== published) {
      problems.push(
        `claim ${key} published ${published} with records [${records.map((r) => r.spec.cidr).join(", ")}]`,
      );
    }
    const cidr = Cidr.tryParse(published);
    const address = addressOf.get(key);
    if (ready && (!address || !cidr || address.spec.address !== cidr.addressString())) {
      problems.push(
        `claim ${key} is Ready with ${published} but its IPAddress says ${address?.spec.address}`,
      );
    }
    if (
      address &&
      !address.metadata.ownerReferences?.some((o) => o.uid === claim.metadata.uid && o.controller)
    ) {
      problems.push(`IPAddress ${key} is not controlled by its claim`);
    }
    if (cidr && ref) {
      const pool = ref.kind === "ClusterIPAMRange" ? ref.name : `${claim.metadata.namespace}/${ref.name}`;
      hold(pool, { cidr, what: `claim ${key}` });
    }
  }
  if (held.size === 0) return problems;
  for (const r of requests.filter(inScope)) {
    const ref = rangeRefOf(r);
    const cidr = Cidr.tryParse(r.status?.cidr ?? "");
    if (!cidr || !isReady(r) || isDeleting(r) || isInvalid(ref)) continue;
    const pool = ref.kind === "ClusterIPAMRange" ? ref.name : `${ref.namespace}/${ref.name}`;
    if (held.has(pool)) hold(pool, { cidr, what: `request ${r.metadata.namespace}/${r.metadata.name}` });
  }
  for (const range of ranges) {
    const pool = range.metadata.namespace
      ? `${range.metadata.namespace}/${range.metadata.name}`
      : (range.metadata.name ?? "");
    const claimsHeld = held.get(pool);
    const spec = validateRangeSpec(range.spec);
    if (!claimsHeld || !spec.ok) continue;
    for (const h of claimsHeld.filter((x) => x.what.startsWith("claim "))) {
      for (const e of spec.exclusions) {
        if (h.cidr.start <= e.last && e.first <= h.cidr.end)
          problems.push(`${h.what} holds ${h.cidr}, excluded by ${e.entry}`);
      }
    }
  }
  for (const [pool, list] of held) problems.push(...overlaps(pool, list));
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
