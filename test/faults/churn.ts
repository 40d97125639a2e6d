// Shared by the fault scenarios: a seeded plan of request creations and deletions, run with bounded
// concurrency by a client that rides out API server outages, and the final checks every scenario ends
// with (all live requests Ready, the invariant checker clean, exactly the planned requests alive).

import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import {
  API_VERSION,
  type IPAMRequest,
  type IPAMRequestSpec,
  ipamRequestResource,
} from "../../src/api/types.ts";
import {
  isAlreadyExists,
  isApiError,
  isNotFound,
  type KubeClient,
  RequestTimeoutError,
} from "../../src/runtime/kube.ts";
import { checkInvariants } from "../../src/testing/invariants.ts";
import { isDeleting, isReady } from "../../src/testing/status.ts";
import type { Random } from "../harness/faults.ts";
import { eventually } from "../harness/index.ts";

export type ChurnOp =
  | { kind: "create"; name: string; spec: IPAMRequestSpec }
  | { kind: "delete"; name: string };

export interface ChurnPlan {
  ops: ChurnOp[];
  /** Names of the requests that exist once every op ran. */
  live: Set<string>;
  creates: number;
  deletes: number;
}

/**
 * Interleaves creations (in the order given) with deletions of requests created earlier — sometimes
 * the one just created — with probability `deleteShare` after each creation.
 */
export function churnPlan(
  random: Random,
  requests: { name: string; spec: IPAMRequestSpec }[],
  deleteShare: number,
  canDelete: (name: string) => boolean = () => true,
): ChurnPlan {
  const ops: ChurnOp[] = [];
  const alive: string[] = [];
  let deletes = 0;
  for (const r of requests) {
    ops.push({ kind: "create", name: r.name, spec: r.spec });
    alive.push(r.name);
    if (random() < deleteShare) {
      const candidates = alive.filter(canDelete);
      if (candidates.length === 0) continue;
      // Half of the time one of the newest (likely still being allocated), else any.
      const recent = candidates.slice(-8);
      const pool = random() < 0.5 ? recent : candidates;
      const name = pool[Math.floor(random() * pool.length)] as string;
      alive.splice(alive.indexOf(name), 1);
      ops.push({ kind: "delete", name });
      deletes++;
    }
  }
  return { ops, live: new Set(alive), creates: requests.length, deletes };
}

/** Errors a client should retry: transport failures, timeouts, 5xx, 429. */
function transient(err: unknown): boolean {
  if (err instanceof RequestTimeoutError) return true;
  if (isApiError(err)) return err.status >= 500 || err.status === 429;
  return true; // ECONNREFUSED, ECONNRESET, socket hang up, …
}

async function retrying<T>(what: string, fn: () => Promise<T>, deadlineMs = 120_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!transient(err) || Date.now() > deadline) {
        throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
    }
    // Pacing of the test client's own retries while the API server is away.
    await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1_000)));
  }
}

export interface ChurnOptions {
  concurrency?: number;
  /** Awaited before op `index` starts (lets a scenario hold the churn back until a fault happened). */
  gate?: (index: number) => Promise<void>;
  /** Called after each op completes, with the number completed so far. */
  progress?: (completed: number) => void;
}

/** Runs the plan; a deletion waits for its request's creation. Rides out API server outages. */
export async function runChurn(
  client: KubeClient,
  namespace: string,
  plan: ChurnPlan,
  options: ChurnOptions = {},
): Promise<void> {
  const created = new Map<string, Promise<void>>();
  const settle = new Map<string, () => void>();
  for (const op of plan.ops) {
    if (op.kind === "create") created.set(op.name, new Promise((resolve) => settle.set(op.name, resolve)));
  }
  let next = 0;
  let completed = 0;
  const run = async (op: ChurnOp): Promise<void> => {
    if (op.kind === "create") {
      await retrying(`create ${op.name}`, async () => {
        try {
          await client.create<IPAMRequest>(ipamRequestResource, {
            apiVersion: API_VERSION,
            kind: "IPAMRequest",
            metadata: { name: op.name, namespace },
            spec: op.spec,
          });
        } catch (err) {
          // An earlier attempt whose answer was lost did create it.
          if (!isAlreadyExists(err)) throw err;
        }
      });
      settle.get(op.name)?.();
      return;
    }
    await created.get(op.name);
    await retrying(`delete ${op.name}`, async () => {
      try {
        await client.delete(ipamRequestResource, op.name, { namespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    });
  };
  const worker = async (): Promise<void> => {
    while (next < plan.ops.length) {
      const index = next++;
      await options.gate?.(index);
      await run(plan.ops[index] as ChurnOp);
      completed++;
      options.progress?.(completed);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
}

/**
 * The end of every scenario: every planned request (and no other) exists and is Ready, nothing is
 * left half-deleted, and the invariant checker finds nothing.
 */
export async function assertSettled(
  client: KubeClient,
  namespace: string,
  plan: ChurnPlan,
  timeoutMs = 180_000,
): Promise<void> {
  await eventually(
    async () => {
      const list = await client.listAll<IPAMRequest>(ipamRequestResource, { namespace });
      const live = list.items.filter((r) => !isDeleting(r));
      const names = live.map((r) => r.metadata.name);
      const deleting = list.items.length - live.length;
      const waiting = live.filter((r) => !isReady(r));
      const sample = waiting.slice(0, 5).map((r) => `${r.metadata.name}: ${JSON.stringify(r)}`);
      assert.equal(deleting, 0, "requests still being deleted");
      assert.equal(waiting.length, 0, `not Ready: ${waiting.length}; ${sample.join("; ")}`);
      assert.deepEqual(new Set(names), plan.live, "the live requests are exactly the planned ones");
    },
    { timeoutMs, intervalMs: 500 },
  );
  await eventually(
    async () =>
      assert.deepEqual(
        await checkInvariants(client, { namespaces: [namespace], allReady: true, noneDeleting: true }),
        [],
      ),
    { timeoutMs: 30_000, intervalMs: 250 },
  );
}

/** Elapsed seconds since `start` (performance.now()), for diagnostics. */
export function seconds(start: number): string {
  return ((performance.now() - start) / 1000).toFixed(1);
}

/** Runs `body`; if it fails, writes `lines()` (e.g. the controller's last log lines) as diagnostics. */
export async function diagnoseFailure(
  t: TestContext,
  lines: () => string[],
  body: () => Promise<void>,
): Promise<void> {
  try {
    await body();
  } catch (error) {
    for (const line of lines()) t.diagnostic(line.trimEnd());
    throw error;
  }
}
