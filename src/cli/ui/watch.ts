// List-then-watch of everything the map shows, with the user's credentials, into a ClusterState.
// Each source is probed with one small list first: a kind that is not installed (404: no
// ClusterIPAMRange, no Cluster API) shows nothing and is probed again later, so CRDs installed while
// the UI runs appear without a restart; a source the user may not read (403) becomes a warning on the
// page. Nothing is ever written.

import { CLUSTER_RANGE_KIND } from "../../api/pool-ref.ts";
import {
  clusterIpamRangeResource,
  type IPAMAllocation,
  type IPAMRequest,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
  RANGE_KIND_LABEL,
} from "../../api/types.ts";
import { Informer } from "../../runtime/informer.ts";
import { ApiError, type KubeClient, type KubeObject, type ResourceType } from "../../runtime/kube.ts";
import { sleep } from "../../runtime/util.ts";
import type { ClusterState } from "./cluster-state.ts";
import { type ClaimObject, claimResource, type RangeObject } from "./objects.ts";

/** One namespace, or all of them. */
export interface Scope {
  all: boolean;
  namespace: string;
}

interface Source<T extends KubeObject> {
  name: string;
  type: ResourceType;
  namespace?: string;
  labelSelector?: string;
  /** A kind kubipam may run without (its absence is no problem). */
  optional: boolean;
  /** Followed only while this kind is installed. */
  requires?: ResourceType;
  put(object: T): void;
  remove(object: T): void;
}

/** How long to wait before probing a missing or forbidden source again. */
const PROBE_AGAIN_MS = 5000;

function sources(state: ClusterState, scope: Scope): Source<KubeObject>[] {
  const namespace = scope.all ? undefined : scope.namespace;
  const list: Source<never>[] = [
    {
      name: "ipamranges",
      type: ipamRangeResource,
      namespace,
      optional: false,
      put: (o: RangeObject) => state.putRange(o),
      remove: (o: RangeObject) => state.deleteRange(o),
    },
    {
      name: "clusteripamranges",
      type: clusterIpamRangeResource,
      optional: true,
      put: (o: RangeObject) => state.putRange({ ...o, kind: clusterIpamRangeResource.kind }),
      remove: (o: RangeObject) => state.deleteRange({ ...o, kind: clusterIpamRangeResource.kind }),
    },
    {
      name: "ipamallocations",
      type: ipamAllocationResource,
      namespace,
      optional: false,
      put: (o: IPAMAllocation) => state.putRecord(o),
      remove: (o: IPAMAllocation) => state.deleteRecord(o),
    },
    {
      name: "ipamrequests",
      type: ipamRequestResource,
      namespace,
      optional: false,
      put: (o: IPAMRequest) => state.putRequest(o),
      remove: (o: IPAMRequest) => state.deleteRequest(o),
    },
    {
      name: "ipaddressclaims",
      type: claimResource,
      namespace,
      optional: true,
      put: (o: ClaimObject) => state.putClaim(o),
      remove: (o: ClaimObject) => state.deleteClaim(o),
    },
  ];
  if (!scope.all) {
    // The records of cluster ranges live in one namespace of the controller's choosing: find them
    // by their kind label wherever they are.
    list.push({
      name: "ipamallocations of ClusterIPAMRanges",
      type: ipamAllocationResource,
      labelSelector: `${RANGE_KIND_LABEL}=${CLUSTER_RANGE_KIND}`,
      optional: true,
      requires: clusterIpamRangeResource,
      put: (o: IPAMAllocation) => state.putRecord(o),
      remove: (o: IPAMAllocation) => state.deleteRecord(o),
    });
  }
  return list as Source<KubeObject>[];
}

function where(source: Source<KubeObject>): string {
  return source.namespace
    ? `${source.name} in namespace ${source.namespace}`
    : `${source.name} in all namespaces`;
}

/** undefined: readable; "absent": kind not installed; else a warning for the page. */
async function probe(client: KubeClient, source: Source<KubeObject>): Promise<undefined | "absent" | string> {
  try {
    if (source.requires) await client.list(source.requires, { limit: 1 });
  } catch {
    // Not installed, or not readable (then its own source says so): nothing to follow here.
    return "absent";
  }
  try {
    await client.list(source.type, {
      limit: 1,
      ...(source.namespace ? { namespace: source.namespace } : {}),
      ...(source.labelSelector ? { labelSelector: source.labelSelector } : {}),
    });
    return undefined;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return source.optional ? "absent" : `${source.type.kind} is not installed in this cluster (no CRD)`;
    }
    if (error instanceof ApiError && error.status === 403) {
      return `cannot list ${where(source)}: forbidden (${error.message})`;
    }
    return `cannot list ${where(source)}: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Probes until the source is readable, then runs its informer until `signal` aborts. */
async function follow(
  client: KubeClient,
  state: ClusterState,
  source: Source<KubeObject>,
  signal: AbortSignal,
  settled: () => void,
): Promise<void> {
  for (;;) {
    const problem = await probe(client, source);
    if (signal.aborted) return;
    if (problem === undefined) break;
    state.setWarning(source.name, problem === "absent" ? undefined : problem);
    settled();
    await sleep(PROBE_AGAIN_MS, signal);
    if (signal.aborted) return;
  }
  state.setWarning(source.name, undefined);
  const informer = new Informer<KubeObject>(client, source.type, {
    ...(source.namespace ? { namespace: source.namespace } : {}),
    ...(source.labelSelector ? { labelSelector: source.labelSelector } : {}),
  });
  informer.addEventHandler({
    onAdd: (o) => source.put(o),
    onUpdate: (_old, o) => source.put(o),
    onDelete: (o) => source.remove(o),
  });
  const running = informer.start(signal);
  if (await informer.waitForSync(signal)) settled();
  await running;
}

/**
 * Starts following every source; resolves once each has listed (or turned out missing or
 * unreadable). The watches run until `signal` aborts.
 */
export function startWatches(
  client: KubeClient,
  state: ClusterState,
  scope: Scope,
  signal: AbortSignal,
): Promise<void> {
  const all = sources(state, scope);
  let waiting = all.length;
  return new Promise((resolve) => {
    for (const source of all) {
      let done = false;
      const settled = () => {
        if (done) return;
        done = true;
        if (--waiting === 0) resolve();
      };
      void follow(client, state, source, signal, settled);
    }
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
