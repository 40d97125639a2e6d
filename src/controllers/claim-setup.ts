// Wires the Cluster API provider to the runtime: informers of IPAddressClaims, IPAddresses and Clusters
// that start once discovery serves them (Cluster API may be installed after kubipam started, or never),
// their indexes, and the ports a fence term's IpamController gets. The claim queue is per term.

import {
  type Cluster,
  clusterResource,
  type IPAddress,
  type IPAddressClaim,
  ipAddressClaimResource,
  ipAddressResource,
} from "../api/cluster-api.ts";
import { DeferredInformer } from "../runtime/deferred-informer.ts";
import type { Manager } from "../runtime/manager.ts";
import { claimClusterIndex } from "./claim-handlers.ts";
import { claimClusterNamespaceIndex, claimPoolIndex } from "./claim-pool.ts";
import {
  CLAIMS_BY_CLUSTER,
  CLAIMS_BY_CLUSTER_NAMESPACE,
  CLAIMS_BY_POOL,
  type ClaimDeps,
} from "./claim-ports.ts";
import { KubeClaimWriter } from "./claim-writer.ts";
import type { IpamController } from "./ipam-controller.ts";
import type { Queue } from "./ports.ts";

export interface ClaimInformers {
  /** The ports for one term, with that term's claim queue. */
  deps(claimQueue: Queue): ClaimDeps;
  /** Resolves once each resource was found not served, or its cache has synced. */
  settled(signal: AbortSignal): Promise<void>;
}

/** Default interval at which discovery is asked whether Cluster API's resources are served. */
export const CLUSTER_API_POLL_MS = 2000;

export function addClaimInformers(
  mgr: Manager,
  current: () => IpamController | undefined,
  pollIntervalMs = CLUSTER_API_POLL_MS,
): ClaimInformers {
  const options = { logger: mgr.logger, registry: mgr.registry, pollIntervalMs };
  const claims = new DeferredInformer<IPAddressClaim>(mgr.client, ipAddressClaimResource, options);
  const addresses = new DeferredInformer<IPAddress>(mgr.client, ipAddressResource, options);
  const clusters = new DeferredInformer<Cluster>(mgr.client, clusterResource, options);
  claims.addIndex(CLAIMS_BY_POOL, claimPoolIndex);
  claims.addIndex(CLAIMS_BY_CLUSTER, claimClusterIndex);
  claims.addIndex(CLAIMS_BY_CLUSTER_NAMESPACE, claimClusterNamespaceIndex);
  claims.addEventHandler({
    onAdd: (c) => current()?.onClaimChange(c),
    onUpdate: (old, c) => current()?.onClaimChange(c, old),
    onDelete: (c) => current()?.onClaimDelete(c),
  });
  addresses.addEventHandler({
    onAdd: (a) => current()?.onAddress(a),
    onUpdate: (_old, a) => current()?.onAddress(a),
    onDelete: (a) => current()?.onAddress(a),
  });
  clusters.addEventHandler({
    onAdd: (c) => current()?.onCluster(c),
    onUpdate: (old, c) => current()?.onCluster(c, old),
    onDelete: (c) => current()?.onCluster(c),
  });
  // A cache that becomes complete later than the term's bootstrap: every claim looks once more.
  for (const informer of [claims, addresses, clusters] as const) {
    informer.onServed(() => current()?.onClaimsServed());
    // Not leader-elected: a standby keeps warm caches like for kubipam's own resources.
    mgr.add({ name: informer.name, start: (signal) => informer.start(signal) }, false);
  }
  const writer = new KubeClaimWriter(mgr.client);
  return {
    settled: async (signal) => {
      await Promise.all([claims, addresses, clusters].map((i) => i.settled(signal)));
    },
    deps: (claimQueue) => ({
      claims,
      addresses,
      clusters,
      clustersState: () =>
        clusters.state === "synced" || clusters.state === "absent" || clusters.state === "forbidden"
          ? clusters.state
          : "pending",
      claimQueue,
      writer,
    }),
  };
}
