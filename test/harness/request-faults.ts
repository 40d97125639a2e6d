// Failing requests for test/faults: request hooks that make a KubeClient's calls fail (before or after
// they reach the API server), and a network partition between one client and the API server.

import type { Readable } from "node:stream";
import {
  type KubeRequest,
  type KubeResponse,
  type RequestHook,
  RequestTimeoutError,
} from "../../src/runtime/kube.ts";
import type { Random } from "./seeded-random.ts";

/**
 * How a request fails. `unsent-*` never reach the API server; `applied-*` are sent and applied, and
 * then the caller is told they failed (the ambiguous outcome of a lost answer).
 */
export type FaultKind =
  | "unsent-refused"
  | "unsent-500"
  | "unsent-timeout"
  | "applied-timeout"
  | "applied-reset"
  | "applied-500";

const UNSENT: FaultKind[] = ["unsent-refused", "unsent-500", "unsent-timeout"];
const APPLIED: FaultKind[] = ["applied-timeout", "applied-reset", "applied-500"];
const WRITE_VERBS = ["create", "update", "patch", "delete"];

export interface FaultOptions {
  /** Probability that a write (create, update, patch, delete) fails. */
  writeRate: number;
  /** Probability that a single-object get fails (never applied: reads have no effect). Default 0. */
  readRate?: number;
  /** Of the failing writes, the share that is applied before it fails (default 1/3). */
  appliedShare?: number;
  random: Random;
}

export interface FaultInjector {
  readonly hook: RequestHook;
  /** Faults are injected only while enabled (initially true). */
  enabled: boolean;
  /** Injected faults by kind, and the requests that passed the hook while enabled. */
  readonly counts: Record<FaultKind | "passed", number>;
  /** Injected faults in total. */
  injected(): number;
}

function statusAnswer(code: number, reason: string, message: string): KubeResponse {
  const body = { kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message };
  return {
    status: code,
    headers: { "content-type": "application/json" },
    body: Buffer.from(JSON.stringify(body)),
  };
}

function injectedError(message: string, code: string): Error {
  return Object.assign(new Error(`${message} (injected)`), { code });
}

async function fail(kind: FaultKind, req: KubeRequest, next: (r: KubeRequest) => Promise<KubeResponse>) {
  const what = `${req.verb} ${req.resource}`;
  switch (kind) {
    case "unsent-refused":
      throw injectedError(`connect ECONNREFUSED: ${what}`, "ECONNREFUSED");
    case "unsent-500":
      return statusAnswer(500, "InternalError", `Internal error occurred: ${what} (injected)`);
    case "unsent-timeout":
      throw new RequestTimeoutError(`${what}: no answer (injected)`, req.timeoutMs);
    case "applied-timeout":
      await next(req);
      throw new RequestTimeoutError(`${what}: answer lost (injected)`, req.timeoutMs);
    case "applied-reset":
      await next(req);
      throw injectedError(`socket hang up after ${what}`, "ECONNRESET");
    case "applied-500":
      await next(req);
      // What kube-apiserver says when etcd was slow to confirm a write it then applied.
      return statusAnswer(500, "InternalError", `etcdserver: request timed out: ${what} (injected)`);
  }
}

/** A hook that fails writes (and optionally reads) at random, some of them after applying them. */
export function randomFaults(options: FaultOptions): FaultInjector {
  const counts: Record<FaultKind | "passed", number> = {
    "unsent-refused": 0,
    "unsent-500": 0,
    "unsent-timeout": 0,
    "applied-timeout": 0,
    "applied-reset": 0,
    "applied-500": 0,
    passed: 0,
  };
  const appliedShare = options.appliedShare ?? 1 / 3;
  const pick = (kinds: FaultKind[]): FaultKind =>
    kinds[Math.floor(options.random() * kinds.length)] as FaultKind;
  const injector: FaultInjector = {
    enabled: true,
    counts,
    injected: () => Object.entries(counts).reduce((n, [k, v]) => (k === "passed" ? n : n + v), 0),
    hook: async (req, next) => {
      if (!injector.enabled || req.watch) return next(req);
      const write = WRITE_VERBS.includes(req.verb);
      const rate = write ? options.writeRate : req.verb === "get" ? (options.readRate ?? 0) : 0;
      if (rate === 0 || options.random() >= rate) {
        counts.passed++;
        return next(req);
      }
      const kind = write && options.random() < appliedShare ? pick(APPLIED) : pick(UNSENT);
      counts[kind]++;
      return fail(kind, req, next);
    },
  };
  return injector;
}

export interface Partition {
  readonly hook: RequestHook;
  /** Ends every open watch; until `heal`, requests wait (and time out as the network would let them). */
  cut(): void;
  heal(): void;
  readonly isCut: boolean;
  /** Resources (plural) with a watch open through this client now. */
  openWatches(): string[];
}

/** A network partition between one client and the API server. */
export function partition(): Partition {
  const streams = new Map<Readable, string>();
  let cut = false;
  let healed: Promise<void> = Promise.resolve();
  let release: () => void = () => {};
  const waitForHeal = async (req: KubeRequest): Promise<void> => {
    if (!cut) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RequestTimeoutError(`${req.verb} ${req.resource}: partitioned`, req.timeoutMs)),
        req.timeoutMs,
      );
    });
    const aborted = new Promise<never>((_, reject) => {
      req.signal?.addEventListener("abort", () => reject(req.signal?.reason), { once: true });
    });
    try {
      await Promise.race([healed, timedOut, aborted]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    get isCut() {
      return cut;
    },
    openWatches: () => [...streams.values()],
    hook: async (req, next) => {
      await waitForHeal(req);
      const res = await next(req);
      const stream = res.stream;
      if (stream) {
        if (cut) stream.destroy();
        else {
          streams.set(stream, req.resource);
          stream.once("close", () => streams.delete(stream));
        }
      }
      return res;
    },
    cut() {
      if (cut) return;
      cut = true;
      healed = new Promise((resolve) => {
        release = resolve;
      });
      for (const stream of streams.keys()) stream.destroy();
      streams.clear();
    },
    heal() {
      if (!cut) return;
      cut = false;
      release();
    },
  };
}
