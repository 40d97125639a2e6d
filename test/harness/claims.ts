// Helpers for Cluster API scenarios: create claims, Clusters and read IPAddresses with the real CRDs
// (installClusterApiCrds), and wait for a claim's Ready condition.

import {
  CAPI_CORE_API_VERSION,
  CAPI_IPAM_API_VERSION,
  type Cluster,
  clusterResource,
  type IPAddress,
  type IPAddressClaim,
  ipAddressClaimResource,
  ipAddressResource,
} from "../../src/api/cluster-api.ts";
import { GROUP } from "../../src/api/types.ts";
import type { Condition } from "../../src/runtime/conditions.ts";
import { isNotFound, type KubeClient } from "../../src/runtime/kube.ts";
import { eventually } from "./index.ts";

export interface ClaimFixture {
  claim(
    name: string,
    pool: { name: string; kind?: string; apiGroup?: string },
    extra?: { clusterName?: string; labels?: Record<string, string> },
  ): Promise<IPAddressClaim>;
  getClaim(name: string): Promise<IPAddressClaim | undefined>;
  getAddress(name: string): Promise<IPAddress | undefined>;
  cluster(name: string, paused?: { spec?: boolean; annotation?: boolean }): Promise<Cluster>;
  /** Waits until the claim's Ready condition satisfies `done` (30 s) and returns the claim. */
  ready(name: string, done?: (c: Condition | undefined) => boolean): Promise<IPAddressClaim>;
  deleteClaim(name: string): Promise<void>;
  /** Waits until the claim is gone (30 s). */
  gone(name: string): Promise<void>;
}

export const readyCondition = (claim: IPAddressClaim | undefined): Condition | undefined =>
  claim?.status?.conditions?.find((c) => c.type === "Ready");

export function claimFixture(client: KubeClient, namespace: string): ClaimFixture {
  const read = async <T>(type: typeof ipAddressClaimResource | typeof ipAddressResource, name: string) => {
    try {
      return await client.get<T & { metadata: object }>(type, name, { namespace });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const getClaim = (name: string) => read<IPAddressClaim>(ipAddressClaimResource, name);
  return {
    claim: (name, pool, extra = {}) =>
      client.create<IPAddressClaim>(ipAddressClaimResource, {
        apiVersion: CAPI_IPAM_API_VERSION,
        kind: "IPAddressClaim",
        metadata: { name, namespace, ...(extra.labels ? { labels: extra.labels } : {}) },
        spec: {
          ...(extra.clusterName ? { clusterName: extra.clusterName } : {}),
          poolRef: { apiGroup: pool.apiGroup ?? GROUP, kind: pool.kind ?? "IPAMRange", name: pool.name },
        },
      }),
    getClaim,
    getAddress: (name) => read<IPAddress>(ipAddressResource, name),
    cluster: (name, paused = {}) =>
      client.create<Cluster>(clusterResource, {
        apiVersion: CAPI_CORE_API_VERSION,
        kind: "Cluster",
        metadata: {
          name,
          namespace,
          ...(paused.annotation ? { annotations: { "cluster.x-k8s.io/paused": "" } } : {}),
        },
        spec: { paused: paused.spec === true },
      }),
    ready: (name, done = (c) => c?.status === "True") =>
      eventually(
        async () => {
          const claim = await getClaim(name);
          if (!claim || !done(readyCondition(claim))) {
            throw new Error(`claim ${name} not settled: ${JSON.stringify(claim?.status)}`);
          }
          return claim;
        },
        { timeoutMs: 30_000 },
      ),
    deleteClaim: async (name) => {
      await client.delete(ipAddressClaimResource, name, { namespace });
    },
    gone: (name) =>
      eventually(
        async () => {
          if (await getClaim(name)) throw new Error(`claim ${name} still exists`);
        },
        { timeoutMs: 30_000 },
      ),
  };
}
