// Helpers for IPAM scenarios: create ranges and requests, wait for their status, run a controller.

import {
  API_VERSION,
  type IPAMRange,
  type IPAMRangeSpec,
  type IPAMRequest,
  type IPAMRequestSpec,
  ipamRangeResource,
  ipamRequestResource,
} from "../../src/api/types.ts";
import type { EventSink } from "../../src/controllers/ports.ts";
import { addIpamControllers, DEFAULT_FENCE_NAME, type IpamControllers } from "../../src/controllers/setup.ts";
import { isNotFound, KubeClient, type RequestHook } from "../../src/runtime/kube.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import { Manager } from "../../src/runtime/manager.ts";
import { createRegistry } from "../../src/runtime/metrics.ts";
import { hasState } from "../../src/testing/status.ts";
import { eventually, type TestCluster } from "./index.ts";

export interface IpamFixture {
  client: KubeClient;
  namespace: string;
  range(name: string, spec: IPAMRangeSpec, namespace?: string): Promise<IPAMRange>;
  request(name: string, spec: IPAMRequestSpec, namespace?: string): Promise<IPAMRequest>;
  getRequest(name: string, namespace?: string): Promise<IPAMRequest | undefined>;
  getRange(name: string, namespace?: string): Promise<IPAMRange | undefined>;
  /** Waits until the request's status satisfies `done` (default: has a state) and returns it. */
  settled(name: string, done?: (r: IPAMRequest) => boolean, namespace?: string): Promise<IPAMRequest>;
  rangeSettled(name: string, done: (r: IPAMRange) => boolean, namespace?: string): Promise<IPAMRange>;
  deleteRequest(name: string, namespace?: string): Promise<void>;
  deleteRange(name: string, namespace?: string): Promise<void>;
}

/** Polls `read` until the object exists and satisfies `done` (30 s deadline). */
function settle<T extends { status?: unknown }>(
  kind: string,
  read: () => Promise<T | undefined>,
  done: (o: T) => boolean,
  key: string,
): Promise<T> {
  return eventually(
    async () => {
      const o = await read();
      if (!o || !done(o)) throw new Error(`${kind} ${key} not settled: ${JSON.stringify(o?.status)}`);
      return o;
    },
    { timeoutMs: 30_000 },
  );
}

export function ipamFixture(cluster: Pick<TestCluster, "kubeConfig">, namespace: string): IpamFixture {
  const client = new KubeClient(cluster.kubeConfig);
  const get = async <T>(
    type: typeof ipamRangeResource | typeof ipamRequestResource,
    name: string,
    ns: string,
  ) => {
    try {
      return await client.get<T & { metadata: object }>(type, name, { namespace: ns });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const fixture: IpamFixture = {
    client,
    namespace,
    range: (name, spec, ns = namespace) =>
      client.create<IPAMRange>(ipamRangeResource, {
        apiVersion: API_VERSION,
        kind: "IPAMRange",
        metadata: { name, namespace: ns },
        spec,
      }),
    request: (name, spec, ns = namespace) =>
      client.create<IPAMRequest>(ipamRequestResource, {
        apiVersion: API_VERSION,
        kind: "IPAMRequest",
        metadata: { name, namespace: ns },
        spec,
      }),
    getRequest: (name, ns = namespace) => get<IPAMRequest>(ipamRequestResource, name, ns),
    getRange: (name, ns = namespace) => get<IPAMRange>(ipamRangeResource, name, ns),
    settled: (name, done = hasState, ns = namespace) =>
      settle("request", () => fixture.getRequest(name, ns), done, `${ns}/${name}`),
    rangeSettled: (name, done, ns = namespace) =>
      settle("range", () => fixture.getRange(name, ns), done, `${ns}/${name}`),
    deleteRequest: async (name, ns = namespace) => {
      await client.delete(ipamRequestResource, name, { namespace: ns });
    },
    deleteRange: async (name, ns = namespace) => {
      await client.delete(ipamRangeResource, name, { namespace: ns });
    },
  };
  return fixture;
}

export interface RunningController {
  manager: Manager;
  controllers: IpamControllers;
  stop(): Promise<void>;
}

export interface InProcessOptions {
  /** Concurrent request reconciles (default 4). */
  workers?: number;
  /** Request hooks on the controller's KubeClient (e.g. fault injection, test/harness/faults.ts). */
  hooks?: RequestHook[];
  /** Where the controller's log lines (level error, or debug with KUBIPAM_TEST_LOG_LEVEL=debug) go. */
  log?: (line: string) => void;
  /** Where the controller's events go (default: nowhere). */
  events?: EventSink;
}

/** The allocation fence of test controllers (in-process and processes: see controller-process.ts). */
export const TEST_FENCE = {
  namespace: "kube-system",
  name: DEFAULT_FENCE_NAME,
  leaseDurationMs: 4000,
  renewDeadlineMs: 3000,
  retryPeriodMs: 500,
};

/** Runs the IPAM controller in this process against the cluster (no leader election, no servers). */
export async function runControllerInProcess(
  cluster: Pick<TestCluster, "kubeConfig">,
  options: number | InProcessOptions = {},
): Promise<RunningController> {
  const {
    workers = 4,
    hooks = [],
    log,
    events,
  } = typeof options === "number" ? { workers: options } : options;
  const abort = new AbortController();
  const logger = createLogger({
    level: process.env.KUBIPAM_TEST_LOG_LEVEL === "debug" ? "debug" : "error",
    ...(log ? { sink: log } : {}),
  });
  const manager = new Manager({
    kubeConfig: cluster.kubeConfig,
    logger,
    registry: createRegistry(),
    metricsBindAddress: "0",
    healthProbeBindAddress: "0",
    clientOptions: { hooks },
  });
  const controllers = addIpamControllers(manager, {
    workers,
    rangeStatusDelayMs: 100,
    events: events ?? { emit: () => {} },
    // One fence for every controller of the test run; short, so a killed holder is replaced quickly.
    fence: { ...TEST_FENCE },
  });
  const running = manager.start(abort.signal);
  await Promise.race([
    controllers.bootstrapped,
    running.then(() => Promise.reject(new Error("manager stopped"))),
  ]);
  return {
    manager,
    controllers,
    stop: async () => {
      abort.abort();
      await running;
      manager.client.close();
    },
  };
}
