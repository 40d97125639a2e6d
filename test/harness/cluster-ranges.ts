// Helpers for ClusterIPAMRange scenarios: cluster-scoped ranges outlive a test file's namespaces, so
// every one created here is removed again (`cleanup`, with its requests) before the file ends.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  API_VERSION,
  type ClusterIPAMRange,
  type ClusterIPAMRangeSpec,
  clusterIpamRangeResource,
  type IPAMRequest,
  ipamRequestResource,
} from "../../src/api/types.ts";
import { isInvalid, rangeRefOf } from "../../src/api/validation.ts";
import { CoreTypes, isNotFound, type KubeClient } from "../../src/runtime/kube.ts";
import { eventually } from "./index.ts";

export interface ClusterRangeFixture {
  /** Creates a ClusterIPAMRange named `<prefix>-<random>` and returns it. */
  create(prefix: string, spec: ClusterIPAMRangeSpec): Promise<ClusterIPAMRange>;
  get(name: string): Promise<ClusterIPAMRange | undefined>;
  /** Waits until the range's status satisfies `done` (30 s deadline) and returns it. */
  settled(name: string, done: (r: ClusterIPAMRange) => boolean): Promise<ClusterIPAMRange>;
  delete(name: string): Promise<void>;
  /** Waits until the range is gone. */
  gone(name: string): Promise<void>;
  /** Replaces a namespace's labels (merge patch; `null` removes a label). */
  label(namespace: string, labels: Record<string, string | null>): Promise<void>;
  /** Deletes every request that names one of these ranges, then the ranges, and waits until they are gone. */
  cleanup(): Promise<void>;
}

export function clusterRangeFixture(client: KubeClient): ClusterRangeFixture {
  const created = new Set<string>();
  const fixture: ClusterRangeFixture = {
    create: async (prefix, spec) => {
      const name = `${prefix}-${randomBytes(3).toString("hex")}`;
      created.add(name);
      return client.create<ClusterIPAMRange>(clusterIpamRangeResource, {
        apiVersion: API_VERSION,
        kind: "ClusterIPAMRange",
        metadata: { name },
        spec,
      });
    },
    get: async (name) => {
      try {
        return await client.get<ClusterIPAMRange>(clusterIpamRangeResource, name);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    settled: (name, done) =>
      eventually(
        async () => {
          const r = await fixture.get(name);
          if (!r || !done(r))
            throw new Error(`ClusterIPAMRange ${name} not settled: ${JSON.stringify(r?.status)}`);
          return r;
        },
        { timeoutMs: 30_000 },
      ),
    delete: async (name) => {
      await client.delete(clusterIpamRangeResource, name);
    },
    gone: (name) =>
      eventually(
        async () => assert.equal(await fixture.get(name), undefined, `ClusterIPAMRange ${name} still there`),
        {
          timeoutMs: 30_000,
        },
      ),
    label: async (namespace, labels) => {
      await client.patch(CoreTypes.namespace, namespace, { metadata: { labels } }, { patchType: "merge" });
    },
    cleanup: async () => {
      const requests = await client.listAll<IPAMRequest>(ipamRequestResource);
      const holders = requests.items.filter((r) => {
        const ref = rangeRefOf(r);
        return !isInvalid(ref) && ref.kind === "ClusterIPAMRange" && created.has(ref.name);
      });
      for (const r of holders) {
        await ignoreNotFound(
          client.delete(ipamRequestResource, r.metadata.name ?? "", { namespace: r.metadata.namespace }),
        );
      }
      for (const name of created) await ignoreNotFound(fixture.delete(name));
      for (const name of created) await fixture.gone(name);
    },
  };
  return fixture;
}

async function ignoreNotFound(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
