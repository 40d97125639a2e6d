// The IPAM controller with its ports faked, for deterministic tests of one reconcile path without a
// cluster. Everything not given does nothing.

import type {
  ClusterIPAMRange,
  IPAMAllocation,
  IPAMRange,
  IPAMRequest,
  ObjectMeta,
} from "../../src/api/types.ts";
import { IpamController, type IpamControllerDeps } from "../../src/controllers/ipam-controller.ts";
import type { Cache, IpamWriter } from "../../src/controllers/ports.ts";

export function fakeCache<T extends { metadata: { namespace?: string; name?: string } }>(
  items: T[],
): Cache<T> {
  // Like an informer's keys: `namespace/name`, or `name` for cluster-scoped objects.
  const key = (o: T) =>
    o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : `${o.metadata.name}`;
  return { get: (k) => items.find((o) => key(o) === k), list: () => [...items], byIndex: () => [] };
}

const noop = () => {};

export function fakeController(
  caches: {
    ranges?: IPAMRange[];
    clusterRanges?: ClusterIPAMRange[];
    namespaces?: { metadata: ObjectMeta }[];
    requests?: IPAMRequest[];
    allocations?: IPAMAllocation[];
  },
  writer: Partial<IpamWriter>,
  overrides: Partial<IpamControllerDeps> = {},
): IpamController {
  const fullWriter: IpamWriter = {
    createAllocation: async (a) => a,
    getAllocation: async () => undefined,
    deleteAllocation: async () => {},
    getRequest: async () => undefined,
    patchRequestStatus: async (r) => r,
    setRequestFinalizer: async () => undefined,
    setRangeFinalizer: async () => {},
    patchRangeStatus: async () => {},
    ...writer,
  };
  return new IpamController({
    ranges: fakeCache(caches.ranges ?? []),
    clusterRanges: fakeCache(caches.clusterRanges ?? []),
    namespaces: fakeCache(caches.namespaces ?? []),
    requests: fakeCache(caches.requests ?? []),
    allocations: fakeCache(caches.allocations ?? []),
    rangeQueue: { add: noop, addAfter: noop },
    requestQueue: { add: noop, addAfter: noop },
    allocationQueue: { add: noop, addAfter: noop },
    writer: fullWriter,
    fence: { confirm: async () => true },
    events: { emit: noop },
    metrics: { allocated: noop, released: noop, failed: noop, rangeUsage: noop, rangeGone: noop },
    log: { debug: noop, info: noop, warn: noop, error: noop },
    ...overrides,
  });
}
