/**
 * End-to-end benchmark (`npm run bench:e2e`): a real etcd + kube-apiserver on 127.0.0.1, the controller
 * as a separate process, N IPAMRequests across three ranges. Prints figures, asserts nothing except
 * the safety invariants (exit code 1 if they fail). Method and results: docs/benchmarks.md.
 *
 * Options (argv `--name=value` or environment):
 *   --n=10000            BENCH_N            requests
 *   --workers=8          BENCH_WORKERS      controller `--workers` (and the baseline's concurrency)
 *   --concurrency=16     BENCH_CONCURRENCY  concurrent creates of the benchmark client
 *   --controller=dist    BENCH_CONTROLLER   how the controller runs: `dist` = compiled JavaScript, as the
 *                                           image runs it (built with tsc into a temporary folder first);
 *                                           `tsx` = `node --import tsx src/cli/main.ts` (test harness)
 *   --controller-main=<main.js>  BENCH_CONTROLLER_MAIN  use this compiled cli/main.js instead of building
 *   --no-leader-elect    BENCH_LEADER_ELECT=0  run the controller without `--leader-elect` (the Deployment
 *                                           runs it with leader election, so that is the default here)
 *   --no-baseline        BENCH_BASELINE=0   skip the baseline
 *   --no-restart         BENCH_RESTART=0    skip the restart measurement
 *   --cpu-prof=<dir>     BENCH_CPU_PROF     write V8 CPU profiles of the controller processes there, and
 *                                           a pprof CPU profile of kube-apiserver during the allocation run
 *                                           (`go tool pprof -top <dir>/kube-apiserver.pprof`)
 *   --node-flags="<f> <g>"  BENCH_NODE_FLAGS  extra flags for the controller's node (compare V8 settings)
 *   --json=<file>        BENCH_JSON         also write the figures as JSON
 *   --timeout=1200       BENCH_TIMEOUT_S    the whole run stops (and cleans up) after this many seconds
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import https from "node:https";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../src/api/types.ts";
import { ipamAllocationResource, ipamRangeResource, ipamRequestResource } from "../src/api/types.ts";
import { LocalControlPlane, loadProjectCrds, resolveBinDir } from "../src/cli/control-plane/index.ts";
import { KubeClient, loadKubeConfig } from "../src/runtime/kube.ts";
import { pollUntil, sleep } from "../src/runtime/util.ts";
import { checkInvariants } from "../src/testing/invariants.ts";
import { isReady } from "../src/testing/status.ts";
import { baseline } from "./e2e-baseline-run.ts";
import { atCleanup, cleanup } from "./e2e-cleanup.ts";
import {
  controllerLogTail,
  LEASE_NAMESPACE,
  prepareController,
  readyz,
  rssSampler,
  type StartedController,
  scrape,
  startController,
  startTimeline,
  stopController,
} from "./e2e-controller.ts";
import { cpuLine, type Figures, latencies, objectFigures, report } from "./e2e-figures.ts";
import {
  ALL_READY_TIMEOUT_MS,
  BASELINE,
  CONCURRENCY,
  CPU_PROF,
  JSON_OUT,
  LEADER_ELECT,
  log,
  MODE,
  N,
  RESTART,
  root,
  TIMEOUT_S,
  WORKERS,
} from "./e2e-options.ts";
import {
  CpuMeter,
  diffSamples,
  loadAverage,
  millis,
  percentile,
  processName,
  ReadyWatch,
  type Sample,
  secs,
  sumOf,
} from "./e2e-util.ts";
import {
  createNamespace,
  createRanges,
  createRequests,
  RANGES,
  type RangeSpec,
  requestObject,
} from "./e2e-workload.ts";

const watchdog = setTimeout(() => {
  log(`the run exceeded ${TIMEOUT_S} s: stopping`);
  void cleanup().finally(() => process.exit(2));
}, TIMEOUT_S * 1000);
watchdog.unref();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** What every phase works with. */
interface Run {
  cp: LocalControlPlane;
  client: KubeClient;
  meter: CpuMeter;
  /** The processes whose CPU time is counted, by role. */
  processes: Map<string, number>;
  ns: string;
}

async function main(): Promise<number> {
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "?"}, Node ${process.version}; tree ${treeVersion()}`;
  log(`N=${N} workers=${WORKERS} concurrency=${CONCURRENCY}; ${machine}; load ${loadAverage()}`);
  await prepareController();
  const binDir = await resolveBinDir();
  const cp = await LocalControlPlane.start({ binDir, handleSignals: false });
  atCleanup(() => cp.stop());
  const crds = await loadProjectCrds();
  if (!crds) throw new Error("src/api/crds.ts not found");
  await cp.installCrds(crds);
  log(`control plane ${cp.version} at ${cp.server}; CRDs installed`);
  const kubeConfig = await loadKubeConfig(cp.kubeconfigPath);
  const client = new KubeClient(kubeConfig, { userAgent: "kubipam-bench" });

  const processes = new Map<string, number>();
  for (const pid of cp.pids) processes.set(processNameOf(pid), pid);
  processes.set("bench", process.pid);
  const run: Run = { cp, client, meter: new CpuMeter(() => processes), processes, ns: "bench" };

  await createNamespace(client, run.ns);
  await createNamespace(client, LEASE_NAMESPACE);
  const watch = new ReadyWatch(client, run.ns);
  const unwatch = atCleanup(() => watch.stop());
  let { controller, figures } = await allocationRun(run, watch, machine);
  if (RESTART) controller = await restartRun(run, controller, watch, figures);
  const problems = await invariants(run, figures);
  await watch.stop();
  unwatch();
  await stopController(controller);
  processes.delete("controller");

  if (BASELINE) figures.baseline = await baseline(client, cp.kubeconfigPath, run.meter, processes, figures);

  report(figures);
  if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(figures, null, 2)}\n`);
  client.close();
  return problems.length === 0 ? 0 : 1;
}

/** The controller allocates for N requests; the figures of that run. */
async function allocationRun(
  { cp, client, meter, processes, ns }: Run,
  watch: ReadyWatch,
  machine: string,
): Promise<{ controller: StartedController; figures: Figures }> {
  const controller = await startController(cp.kubeconfigPath);
  processes.set("controller", controller.pid);
  await pollUntil(async () => ((await readyz(controller)) ? true : undefined), {
    timeoutMs: 60_000,
    intervalMs: 50,
    description: "controller /readyz",
    signal: controller.exited,
  });
  await createRanges(client, ns);
  await pollUntil(
    async () => {
      const list = await client.list<IPAMRange>(ipamRangeResource, { namespace: ns });
      return list.items.length === RANGES.length && list.items.every(isReady) ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50, description: "ranges Ready" },
  );
  log(`controller ${controller.pid} ready; ranges Ready: ${RANGES.map((r) => r.name).join(", ")}`);

  await watch.start();
  const before = await scrape(controller.port);
  const loadBefore = loadAverage();
  const rss = rssSampler(controller.pid, controller.port);
  const created = new Map<string, number>();
  meter.start();
  const t0 = performance.now();
  const apiserverProfile = CPU_PROF
    ? profileApiserver(cp, Math.min(60, Math.max(10, Math.round(N / 150))))
    : undefined;
  const progress = setInterval(() => {
    log(`  ${created.size} created, ${watch.readyAt.size} Ready`);
  }, 5_000);
  try {
    await createRequests(client, ns, N, CONCURRENCY, (name, _uid, _range, at) => created.set(name, at));
    log(`all ${N} created in ${secs(performance.now() - t0)}`);
    await watch.waitFor(`${N} requests Ready`, ALL_READY_TIMEOUT_MS, undefined, N);
  } finally {
    clearInterval(progress);
  }
  const allReadyMs = Math.max(...watch.readyAt.values()) - t0;
  const cpuRun = meter.stop();
  log(`all ${N} Ready after ${secs(allReadyMs)}; cpu: ${cpuLine(cpuRun.cpu, cpuRun.wall)}`);
  // Let the debounced range status writes and queued events go out before the counters are read.
  await sleep(3_000);
  const peakRss = rss.stop();
  if (apiserverProfile) log(`kube-apiserver CPU profile: ${await apiserverProfile}`);
  const after = await scrape(controller.port);
  const delta = diffSamples(before, after);
  const lat = latencies(created, watch);

  const figures: Figures = {
    n: N,
    mode:
      (MODE === "dist" ? "compiled (node dist/cli/main.js)" : "tsx (node --import tsx src/cli/main.ts)") +
      (LEADER_ELECT ? ", --leader-elect" : ""),
    workers: WORKERS,
    concurrency: CONCURRENCY,
    machine,
    loadBefore,
    allReadyMs,
    throughput: (N * 1000) / allReadyMs,
    latencyP50Ms: percentile(lat, 0.5),
    latencyP90Ms: percentile(lat, 0.9),
    latencyP99Ms: percentile(lat, 0.99),
    latencyMaxMs: percentile(lat, 1),
    ...apiCounters(delta),
    peakRssBytes: peakRss,
    memoryAtPeak: rss.atPeak(),
    heapUsedBytes: sumOf(after, "nodejs_heap_size_used_bytes"),
    cpuSeconds: Object.fromEntries(cpuRun.cpu),
    invariants: { problems: [], requests: 0, allocations: 0, ready: 0 },
  };
  if (watch.relistObserved > 0) log(`note: ${watch.relistObserved} Ready transitions seen only in a relist`);
  return { controller, figures };
}

const WRITE_VERBS = new Set(["create", "update", "patch", "delete"]);

/** API calls and reconciles per allocation, from the difference of two scrapes of /metrics. */
function apiCounters(
  delta: Sample[],
): Pick<
  Figures,
  | "writesPerAllocation"
  | "writesWithoutEventsPerAllocation"
  | "writesByKind"
  | "readsPerAllocation"
  | "reconcilesPerRequest"
  | "reconcileErrors"
  | "otherReconciles"
  | "eventsDropped"
> {
  const writesByKind: Record<string, number> = {};
  for (const s of delta) {
    if (s.name !== "rest_client_requests_total" || s.value === 0) continue;
    if (!WRITE_VERBS.has(s.labels.verb ?? "")) continue;
    const key = `${s.labels.verb} ${s.labels.resource} ${s.labels.code}`;
    writesByKind[key] = (writesByKind[key] ?? 0) + s.value;
  }
  const writes = Object.values(writesByKind).reduce((a, b) => a + b, 0);
  const eventWrites = Object.entries(writesByKind)
    .filter(([kind]) => kind.split(" ")[1] === "events")
    .reduce((a, [, n]) => a + n, 0);
  const reads = sumOf(delta, "rest_client_requests_total", { verb: (v) => v === "get" || v === "list" });
  const otherReconciles: Record<string, number> = {};
  for (const name of ["ipamrange", "ipamallocation"]) {
    otherReconciles[name] = sumOf(delta, "controller_runtime_reconcile_total", { controller: name });
  }
  return {
    writesPerAllocation: writes / N,
    writesWithoutEventsPerAllocation: (writes - eventWrites) / N,
    writesByKind,
    readsPerAllocation: reads / N,
    reconcilesPerRequest:
      sumOf(delta, "controller_runtime_reconcile_total", { controller: "ipamrequest" }) / N,
    reconcileErrors: sumOf(delta, "controller_runtime_reconcile_errors_total"),
    otherReconciles,
    eventsDropped: sumOf(delta, "events_dropped_total"),
  };
}

/** SIGTERM, a new controller with N allocations in place, and a new request right after its spawn. */
async function restartRun(
  { cp, client, processes, ns }: Run,
  old: StartedController,
  watch: ReadyWatch,
  figures: Figures,
): Promise<StartedController> {
  const shutdownMs = await stopController(old);
  log(`controller stopped (SIGTERM) in ${millis(shutdownMs)}; starting a new one`);
  const controller = await startController(cp.kubeconfigPath);
  processes.set("controller", controller.pid);
  const rss2 = rssSampler(controller.pid, controller.port);
  const probe = "probe-after-restart";
  const probeCreate = client.create(ipamRequestResource, requestObject(ns, probe, RANGES[0] as RangeSpec));
  const readyzAt = pollUntil(async () => ((await readyz(controller)) ? performance.now() : undefined), {
    timeoutMs: 60_000,
    intervalMs: 20,
    description: "restarted controller /readyz",
    signal: controller.exited,
  });
  await probeCreate;
  await watch.waitFor("probe request Ready after restart", 60_000, [probe]);
  const readyzMs = (await readyzAt) - controller.startedAt;
  const probeReadyMs = (watch.readyAt.get(probe) ?? Number.NaN) - controller.startedAt;
  await sleep(1_000);
  const heap2 = await scrape(controller.port);
  figures.restart = {
    shutdownMs,
    readyzMs,
    probeReadyMs,
    peakRssBytes: rss2.stop(),
    memoryAtPeak: rss2.atPeak(),
    heapUsedBytes: sumOf(heap2, "nodejs_heap_size_used_bytes"),
    timeline: startTimeline(controller),
  };
  log(`restart: /readyz after ${millis(readyzMs)}, probe Ready after ${millis(probeReadyMs)}`);
  return controller;
}

/** The safety invariants, retried while the debounced range usage settles; returns the problems left. */
async function invariants({ client, ns }: Run, figures: Figures): Promise<string[]> {
  let problems: string[] = [];
  try {
    await pollUntil(
      async () => {
        problems = await checkInvariants(client, { namespaces: [ns], allReady: true });
        return problems.length === 0 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, description: "the invariants to hold" },
    );
  } catch {
    // `problems` holds the last findings.
  }
  const [requests, allocations] = await Promise.all([
    client.listAll<IPAMRequest>(ipamRequestResource, { namespace: ns }),
    client.listAll<IPAMAllocation>(ipamAllocationResource, { namespace: ns }),
  ]);
  figures.objects = objectFigures(requests.items, allocations.items);
  figures.invariants = {
    problems,
    requests: requests.items.length,
    allocations: allocations.items.length,
    ready: requests.items.filter(isReady).length,
  };
  log(
    `invariants: ${problems.length} problems; ${figures.invariants.ready}/${figures.invariants.requests} Ready, ` +
      `${figures.invariants.allocations} allocation objects`,
  );
  return problems;
}

/** Fetches a pprof CPU profile of kube-apiserver (its /debug/pprof is on by default) into CPU_PROF. */
async function profileApiserver(cp: LocalControlPlane, seconds: number): Promise<string> {
  const file = join(resolve(CPU_PROF), "kube-apiserver.pprof");
  const url = new URL(`/debug/pprof/profile?seconds=${seconds}`, cp.server);
  const body = await new Promise<Buffer>((resolvePromise, reject) => {
    const req = https.get(
      url,
      {
        headers: { Authorization: `Bearer ${cp.adminToken}` },
        rejectUnauthorized: false,
        timeout: (seconds + 30) * 1000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          res.statusCode === 200
            ? resolvePromise(Buffer.concat(chunks))
            : reject(new Error(`pprof answered ${res.statusCode}`)),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("pprof timed out")));
    req.on("error", reject);
  }).catch((err: unknown) => err as Error);
  if (body instanceof Error) return `failed: ${body.message}`;
  mkdirSync(resolve(CPU_PROF), { recursive: true });
  writeFileSync(file, body);
  return `${file} (${seconds} s from the first create)`;
}

/** The commit measured, and whether src/ had uncommitted changes (the build compiles the working tree). */
function treeVersion(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: root,
      encoding: "utf8",
    }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], {
      cwd: root,
      encoding: "utf8",
    });
    return dirty.trim() === "" ? head : `${head} + uncommitted src changes`;
  } catch {
    return "unknown";
  }
}

function processNameOf(pid: number): string {
  // /proc/<pid>/comm is at most 15 characters: "kube-apiserver" and "etcd" fit.
  const name = processName(pid);
  return name.includes("apiserver") ? "kube-apiserver" : name.includes("etcd") ? "etcd" : name;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  const tail = controllerLogTail();
  if (tail) process.stderr.write(`controller log tail:\n${tail}\n`);
  exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(exitCode);
