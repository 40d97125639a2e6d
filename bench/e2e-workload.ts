// The workload of the end-to-end benchmark: three ranges in one namespace and N requests spread
// round-robin over them, created with bounded concurrency.

import type { IPAMRange, IPAMRequest } from "../src/api/types.ts";
import { API_VERSION, ipamRangeResource, ipamRequestResource } from "../src/api/types.ts";
import type { Family } from "../src/ipam/index.ts";
import { CoreTypes, isAlreadyExists, isApiError, type KubeClient } from "../src/runtime/kube.ts";
import { sleep } from "../src/runtime/util.ts";

export interface RangeSpec {
  name: string;
  family: Family;
  ranges: string[];
  chunkSize?: number;
  /** Prefix length per request. */
  size: number;
  /** What the request's spec says (undefined: the range's chunkSize). */
  requestSize?: number;
}

export const RANGES: RangeSpec[] = [
  { name: "v4-hosts", family: 4, ranges: ["192.168.0.0/16"], size: 32, requestSize: 32 },
  { name: "v4-nets", family: 4, ranges: ["10.0.0.0/8"], chunkSize: 24, size: 24 },
  { name: "v6-nets", family: 6, ranges: ["fd00:1::/48"], size: 64, requestSize: 64 },
];

export const requestName = (i: number): string => `r-${String(i).padStart(6, "0")}`;
const rangeOf = (i: number): RangeSpec => RANGES[i % RANGES.length] as RangeSpec;

export function requestObject(namespace: string, name: string, range: RangeSpec): IPAMRequest {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMRequest",
    metadata: { name, namespace },
    spec: {
      ipam: { name: range.name },
      ...(range.requestSize !== undefined ? { size: range.requestSize } : {}),
    },
  };
}

/** Creates requests `from..to-1` with at most `concurrency` creates in flight; calls `onCreated` as each returns. */
export async function createRequests(
  client: KubeClient,
  namespace: string,
  count: number,
  concurrency: number,
  onCreated: (name: string, uid: string, range: RangeSpec, at: number) => void,
): Promise<void> {
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const name = requestName(i);
    const range = rangeOf(i);
    for (let attempt = 1; ; attempt++) {
      try {
        const created = await client.create(ipamRequestResource, requestObject(namespace, name, range));
        onCreated(name, created.metadata.uid ?? "", range, performance.now());
        return;
      } catch (err) {
        if (isAlreadyExists(err) && attempt > 1) {
          // An earlier attempt got through after all.
          const existing = await client.get<IPAMRequest>(ipamRequestResource, name, { namespace });
          onCreated(name, existing.metadata.uid ?? "", range, performance.now());
          return;
        }
        const status = isApiError(err) ? err.status : 0;
        if (attempt >= 5 || (status !== 0 && status !== 429 && status < 500)) throw err;
        await sleep(100 * attempt);
      }
    }
  };
  const worker = async (): Promise<void> => {
    while (next < count) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => worker()));
}

export async function createRanges(client: KubeClient, namespace: string): Promise<Map<string, IPAMRange>> {
  const out = new Map<string, IPAMRange>();
  for (const r of RANGES) {
    const created = await client.create<IPAMRange>(ipamRangeResource, {
      apiVersion: API_VERSION,
      kind: "IPAMRange",
      metadata: { name: r.name, namespace },
      spec: { ranges: r.ranges, ...(r.chunkSize !== undefined ? { chunkSize: r.chunkSize } : {}) },
    });
    out.set(r.name, created);
  }
  return out;
}

export async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.create(CoreTypes.namespace, { metadata: { name } });
}
