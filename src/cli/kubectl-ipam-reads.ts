// What `kubectl ipam` reads besides ranges: objects in one namespace or all, a request by name, and
// the requests that may refer to a range or hold one of its blocks. Read-only.

import { CLUSTER_RANGE_KIND } from "../api/pool-ref.ts";
import {
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRequest,
  type ipamAllocationResource,
  type ipamRangeResource,
  ipamRequestResource,
  type RangeObject,
} from "../api/types.ts";
import { ApiError, type KubeClient } from "../runtime/kube.ts";
import { qualified } from "./views/index.ts";

/** Where to look: one namespace, or all of them. */
export interface ListScope {
  all: boolean;
  namespace: string;
}

export function isStatus(err: unknown, status: number): boolean {
  return err instanceof ApiError && err.status === status;
}

export async function listIn<T extends IPAMRange | IPAMRequest | IPAMAllocation>(
  client: KubeClient,
  type: typeof ipamRangeResource | typeof ipamRequestResource | typeof ipamAllocationResource,
  scope: ListScope,
  labelSelector?: string,
): Promise<T[]> {
  const list = await client.listAll<T>(type, {
    ...(scope.all ? {} : { namespace: scope.namespace }),
    ...(labelSelector ? { labelSelector } : {}),
  });
  return list.items;
}

export async function getRequest(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<IPAMRequest | undefined> {
  try {
    return await client.get<IPAMRequest>(ipamRequestResource, name, { namespace });
  } catch (err) {
    if (isStatus(err, 404)) return undefined;
    throw err;
  }
}

/** Requests that may refer to `range` or hold one of its blocks. */
export async function requestsFor(
  warn: (text: string) => void,
  client: KubeClient,
  range: RangeObject,
  allocations: readonly IPAMAllocation[],
): Promise<IPAMRequest[]> {
  const home = range.metadata.namespace ?? "";
  // A cluster range may serve any namespace: look everywhere (or, if not allowed, where it can).
  const allowed = range.kind === CLUSTER_RANGE_KIND ? ["*"] : (range.spec?.allowedNamespaces ?? []);
  const found = new Map<string, IPAMRequest>();
  const add = (items: IPAMRequest[]) => {
    for (const r of items) found.set(qualified(r.metadata.namespace, r.metadata.name), r);
  };
  const listed = new Set<string>();
  let everywhere = false;
  if (allowed.includes("*")) {
    try {
      add(await listIn<IPAMRequest>(client, ipamRequestResource, { all: true, namespace: "" }));
      everywhere = true;
    } catch (err) {
      if (!isStatus(err, 403)) throw err;
      warn("warning: cannot list IPAMRequests in all namespaces; showing those of the range's namespace\n");
    }
  }
  if (!everywhere) {
    for (const ns of new Set([home, ...allowed.filter((n) => n !== "*")])) {
      try {
        add(await listIn<IPAMRequest>(client, ipamRequestResource, { all: false, namespace: ns }));
        listed.add(ns);
      } catch (err) {
        if (!isStatus(err, 403)) throw err;
        warn(`warning: cannot list IPAMRequests in namespace ${ns}\n`);
      }
    }
  }
  // Holders in namespaces not listed: fetch them one by one.
  for (const a of allocations) {
    const ref = a.spec?.request;
    if (!ref || everywhere || listed.has(ref.namespace)) continue;
    const key = qualified(ref.namespace, ref.name);
    if (found.has(key)) continue;
    const request = await getRequest(client, ref.namespace, ref.name);
    if (request) found.set(key, request);
  }
  return [...found.values()];
}
