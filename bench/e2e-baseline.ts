// The baseline of the end-to-end benchmark, as a child process (forked by bench/e2e.ts): no informer,
// no reconciler, no events — only the writes one safe allocation needs in kubipam's design, through the
// controller's own writer (src/controllers/writer.ts) and client (src/runtime/kube.ts):
//
//   1. create of the IPAMAllocation record (the uniqueness guard, with its finalizer in the body),
//   2. merge patch of the request's /status (state, cidr, conditions).
// (The allocation fence's confirmations are shared by batches; they are not part of this minimum.)
//
// The parent sends each request as soon as its create returned; `workers` of them are in flight at once,
// like the controller's workers. Blocks come from the engine (src/ipam), in memory.

import type { IPAMAllocation, IPAMRequest, IPAMRequestStatus } from "../src/api/types.ts";
import { ALLOCATION_FINALIZER, API_VERSION, RANGE_LABEL } from "../src/api/types.ts";
import { allocationName } from "../src/api/validation.ts";
import { KubeIpamWriter } from "../src/controllers/writer.ts";
import { Allocator, type Family, parsePool } from "../src/ipam/index.ts";
import { setCondition } from "../src/runtime/conditions.ts";
import { isApiError, KubeClient, loadKubeConfig } from "../src/runtime/kube.ts";
import { sleep } from "../src/runtime/util.ts";

export interface BaselineRange {
  namespace: string;
  name: string;
  uid: string;
  family: Family;
  pool: string[];
  /** Prefix length each request of this range gets. */
  size: number;
}

export type ToBaseline =
  | { type: "init"; kubeconfig: string; workers: number; ranges: BaselineRange[] }
  | { type: "request"; namespace: string; name: string; uid: string; range: string }
  | { type: "end" };

export type FromBaseline =
  | { type: "ready" }
  | { type: "error"; message: string }
  | { type: "finished"; allocations: number; retries: number };

interface Job {
  namespace: string;
  name: string;
  uid: string;
  range: string;
}

function send(message: FromBaseline): void {
  process.send?.(message);
}

/** Transient failures (throttling, server errors, timeouts) are retried, like a controller would. */
async function withRetries<T>(what: string, fn: () => Promise<T>, onRetry: () => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const status = isApiError(err) ? err.status : 0;
      const transient = status === 0 || status === 429 || status >= 500;
      if (!transient || attempt >= 5) throw new Error(`${what}: ${(err as Error).message}`);
      onRetry();
      await sleep(50 * attempt);
    }
  }
}

async function run(init: Extract<ToBaseline, { type: "init" }>): Promise<void> {
  const kubeConfig = await loadKubeConfig(init.kubeconfig);
  // The options the controller's Manager gives its client (src/cli/controller.ts).
  const client = new KubeClient(kubeConfig, { userAgent: "kubipam-controller" });
  const writer = new KubeIpamWriter(client);
  const ranges = new Map(
    init.ranges.map((r) => [
      r.name,
      {
        range: r,
        allocator: new Allocator({ family: r.family, blocks: parsePool(r.pool).blocks, mode: "FirstMatch" }),
      },
    ]),
  );
  const queue: Job[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  let allocations = 0;
  let retries = 0;
  const onRetry = () => {
    retries++;
  };

  process.on("message", (message: ToBaseline) => {
    if (message.type === "request") queue.push(message);
    else if (message.type === "end") ended = true;
    wake?.();
    wake = undefined;
  });

  const next = async (): Promise<Job | undefined> => {
    for (;;) {
      const job = queue.shift();
      if (job) return job;
      if (ended) return undefined;
      await new Promise<void>((resolve) => {
        const previous = wake;
        wake = () => {
          previous?.();
          resolve();
        };
      });
    }
  };

  const allocate = async (job: Job): Promise<void> => {
    const entry = ranges.get(job.range);
    if (!entry) throw new Error(`unknown range ${job.range}`);
    const request: IPAMRequest = {
      apiVersion: API_VERSION,
      kind: "IPAMRequest",
      metadata: { name: job.name, namespace: job.namespace, uid: job.uid, generation: 1 },
      spec: { ipam: { name: job.range } },
    };
    const cidr = entry.allocator.allocate(entry.range.size).toString();
    const allocation: IPAMAllocation = {
      apiVersion: API_VERSION,
      kind: "IPAMAllocation",
      metadata: {
        name: allocationName(job.range, cidr),
        namespace: job.namespace,
        labels: { [RANGE_LABEL]: job.range },
        finalizers: [ALLOCATION_FINALIZER],
      },
      spec: {
        range: { name: job.range, uid: entry.range.uid },
        cidr,
        request: { namespace: job.namespace, name: job.name, uid: job.uid },
      },
    };
    await withRetries("allocation", () => writer.createAllocation(allocation), onRetry);
    // The same status the controller writes (src/controllers/status.ts requestStatus).
    const now = new Date();
    let conditions = setCondition(
      undefined,
      { type: "Ready", status: "True", reason: "Allocated", message: "", observedGeneration: 1 },
      now,
    );
    conditions = setCondition(
      conditions,
      { type: "InRange", status: "True", reason: "InsideRange", message: "", observedGeneration: 1 },
      now,
    );
    conditions = setCondition(
      conditions,
      { type: "Admitted", status: "True", reason: "NamespaceAdmitted", message: "", observedGeneration: 1 },
      now,
    );
    const status: IPAMRequestStatus = {
      state: "Ready",
      message: "",
      cidr,
      observedGeneration: 1,
      conditions,
    };
    await withRetries("status", () => writer.patchRequestStatus(request, status), onRetry);
    allocations++;
  };

  const worker = async (): Promise<void> => {
    for (let job = await next(); job; job = await next()) await allocate(job);
  };
  send({ type: "ready" });
  await Promise.all(Array.from({ length: init.workers }, () => worker()));
  client.close();
  send({ type: "finished", allocations, retries });
}

process.once("message", (message: ToBaseline) => {
  if (message.type !== "init") {
    send({ type: "error", message: "expected init first" });
    process.exit(1);
  }
  run(message).then(
    () => process.disconnect?.(),
    (err: unknown) => {
      send({ type: "error", message: err instanceof Error ? err.message : String(err) });
      process.disconnect?.();
      process.exitCode = 1;
    },
  );
});
// Gone with the parent.
process.on("disconnect", () => process.exit(process.exitCode ?? 0));
