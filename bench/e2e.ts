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
 *   --json=<file>        BENCH_JSON         also write the figures as JSON
 *   --timeout=1200       BENCH_TIMEOUT_S    the whole run stops (and cleans up) after this many seconds
 */

import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import https from "node:https";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../src/api/types.ts";
import {
  API_VERSION,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../src/api/types.ts";
import {
  freePort,
  LocalControlPlane,
  loadProjectCrds,
  resolveBinDir,
} from "../src/cli/control-plane/index.ts";
import type { Family } from "../src/ipam/index.ts";
import {
  CoreTypes,
  isAlreadyExists,
  isApiError,
  KubeClient,
  type KubeObject,
  loadKubeConfig,
} from "../src/runtime/kube.ts";
import { type ControllerProcess, spawnController } from "../src/testing/controller-process.ts";
import { checkInvariants } from "../src/testing/invariants.ts";
import type { BaselineRange, FromBaseline, ToBaseline } from "./e2e-baseline.ts";
import {
  CpuMeter,
  diffSamples,
  GiveUp,
  httpGet,
  loadAverage,
  mb,
  millis,
  parsePrometheus,
  percentile,
  processName,
  ReadyWatch,
  type Sample,
  secs,
  sleep,
  statusBytes,
  sumOf,
  until,
} from "./e2e-util.ts";

// ------------------------------------------------------------------------------------------------ options

function option(name: string, env: string, fallback: string): string {
  for (const arg of process.argv.slice(2)) {
    if (arg === `--${name}`) return "1";
    if (arg === `--no-${name}`) return "0";
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
  }
  return process.env[env] ?? fallback;
}

function intOption(name: string, env: string, fallback: number): number {
  const value = Number(option(name, env, String(fallback)));
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: a positive integer, not ${value}`);
  return value;
}

const N = intOption("n", "BENCH_N", 10_000);
const WORKERS = intOption("workers", "BENCH_WORKERS", 8);
const CONCURRENCY = intOption("concurrency", "BENCH_CONCURRENCY", 16);
const BASELINE = option("baseline", "BENCH_BASELINE", "1") !== "0";
const RESTART = option("restart", "BENCH_RESTART", "1") !== "0";
const CPU_PROF = option("cpu-prof", "BENCH_CPU_PROF", "");
const JSON_OUT = option("json", "BENCH_JSON", "");
const TIMEOUT_S = intOption("timeout", "BENCH_TIMEOUT_S", 1200);
const CONTROLLER_MAIN = option("controller-main", "BENCH_CONTROLLER_MAIN", "");
const LEADER_ELECT = option("leader-elect", "BENCH_LEADER_ELECT", "1") !== "0";
const MODE = option("controller", "BENCH_CONTROLLER", "dist");
if (MODE !== "dist" && MODE !== "tsx") throw new Error(`--controller: dist or tsx, not ${MODE}`);
if (MODE === "tsx" && CPU_PROF) throw new Error("--cpu-prof needs --controller=dist");

const root = fileURLToPath(new URL("..", import.meta.url));

/** Per-phase wait for all N Ready: generous, so a slow machine gives a figure rather than a timeout. */
const ALL_READY_TIMEOUT_MS = 120_000 + N * 30;

// ------------------------------------------------------------------------------------------------ workload

interface RangeSpec {
  name: string;
  family: Family;
  ranges: string[];
  chunkSize?: number;
  /** Prefix length per request. */
  size: number;
  /** What the request's spec says (undefined: the range's chunkSize). */
  requestSize?: number;
}

const RANGES: RangeSpec[] = [
  { name: "v4-hosts", family: 4, ranges: ["192.168.0.0/16"], size: 32, requestSize: 32 },
  { name: "v4-nets", family: 4, ranges: ["10.0.0.0/8"], chunkSize: 24, size: 24 },
  { name: "v6-nets", family: 6, ranges: ["fd00:1::/48"], size: 64, requestSize: 64 },
];

const requestName = (i: number): string => `r-${String(i).padStart(6, "0")}`;
const rangeOf = (i: number): RangeSpec => RANGES[i % RANGES.length] as RangeSpec;

function requestObject(namespace: string, name: string, range: RangeSpec): IPAMRequest {
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

// ------------------------------------------------------------------------------------------------ run state

function log(message: string): void {
  process.stderr.write(`bench:e2e ${new Date().toISOString().slice(11, 23)} ${message}\n`);
}

let controlPlane: LocalControlPlane | undefined;
const controllers: ControllerProcess[] = [];
let baselineChild: ChildProcess | undefined;
const watches: ReadyWatch[] = [];
let cleaning: Promise<void> | undefined;

/** Stops everything this run started; safe to call more than once. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const w of watches) await w.stop().catch(() => {});
    baselineChild?.kill("SIGKILL");
    await Promise.all(
      controllers.map(async (c) => {
        const timer = setTimeout(() => c.child.kill("SIGKILL"), 10_000);
        await c.kill("SIGTERM");
        clearTimeout(timer);
      }),
    );
    await controlPlane?.stop();
    if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  })();
  return cleaning;
}

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

// ------------------------------------------------------------------------------------------------ helpers

/** Creates requests `from..to-1` with at most `concurrency` creates in flight; calls `onCreated` as each returns. */
async function createRequests(
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

async function createRanges(client: KubeClient, namespace: string): Promise<Map<string, IPAMRange>> {
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

async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.create(CoreTypes.namespace, { metadata: { name } });
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await httpGet(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheus(res.body);
}

async function readyz(c: StartedController): Promise<boolean> {
  const child = c.process.child;
  if (child.exitCode !== null || child.signalCode !== null) {
    throw new GiveUp(`the controller exited (${child.signalCode ?? child.exitCode})`);
  }
  return readyzAt(c.port);
}

async function readyzAt(port: number): Promise<boolean> {
  try {
    return (await httpGet(`http://127.0.0.1:${port}/readyz`, 1_000)).status === 200;
  } catch {
    return false;
  }
}

interface StartedController {
  process: ControllerProcess;
  port: number;
  pid: number;
  /** performance.now() and Date.now() at spawn. */
  startedAt: number;
  startedWall: number;
}

/** Milestones of a controller's start, from its JSON log: ms after spawn for each first occurrence. */
function startTimeline(c: StartedController): [string, number][] {
  const wanted = [
    "starting controller",
    "serving",
    "successfully acquired lease; started leading",
    "allocations rebuilt from the API server",
    "starting workers",
  ];
  const seen = new Map<string, number>();
  for (const line of c.process.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { ts?: string; msg?: string };
      if (entry.msg && entry.ts && wanted.includes(entry.msg) && !seen.has(entry.msg)) {
        seen.set(entry.msg, Date.parse(entry.ts) - c.startedWall);
      }
    } catch {
      // not a log entry
    }
  }
  return wanted.flatMap((m) => (seen.has(m) ? [[m, seen.get(m) ?? 0] as [string, number]] : []));
}

/**
 * Compiles src/ with the project's build settings into a private temporary folder (the working tree is
 * not touched) and returns the path of cli/main.js. The folder gets `"type": "module"` and a link to
 * node_modules, like the image's /app.
 */
async function buildController(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "kubipam-bench-"));
  buildDir = dir;
  writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
  const tsc = join(root, "node_modules/typescript/bin/tsc");
  const args = [tsc, "-p", "tsconfig.build.json", "--outDir", join(dir, "dist"), "--declaration", "false"];
  const code = await new Promise<number | null>((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.on("error", reject);
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolvePromise(c);
    });
  });
  const main = join(dir, "dist/cli/main.js");
  if (!existsSync(main)) throw new Error(`tsc (exit code ${code}) produced no ${main}`);
  if (code !== 0) log(`tsc exit code ${code} (type errors in the tree?); using its output anyway`);
  return main;
}

let buildDir: string | undefined;
let compiledMain: string | undefined;

/** Like src/testing/controller-process.ts, but runs the compiled controller. */
function spawnCompiledController(
  main: string,
  kubeconfigPath: string,
  identity: string,
  args: string[],
  nodeArgs: string[],
): ControllerProcess {
  const env = process.env;
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      main,
      "controller",
      "--kubeconfig",
      kubeconfigPath,
      "--log-format",
      "json",
      "--log-level",
      "info",
      ...args,
    ],
    {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...env, POD_NAME: identity, HOSTNAME: identity },
    },
  );
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 4_000_000) output = output.slice(-2_000_000);
  });
  const exited = new Promise<number | null>((resolvePromise) =>
    child.on("exit", (code) => resolvePromise(code)),
  );
  return {
    child,
    identity,
    output: () => output,
    kill: async (signal: NodeJS.Signals = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

let controllerSerial = 0;
const LEASE_NAMESPACE = "bench-lease";
async function startController(kubeconfigPath: string): Promise<StartedController> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = ["--metrics-bind-address", address, "--health-probe-bind-address", address];
  args.push("--workers", String(WORKERS));
  if (LEADER_ELECT) args.push("--leader-elect", "--leader-election-namespace", LEASE_NAMESPACE);
  const identity = `bench-controller-${++controllerSerial}`;
  // Node 20 refuses --cpu-prof in NODE_OPTIONS: it goes on the command line of the compiled controller.
  const nodeArgs: string[] = [];
  if (CPU_PROF) {
    mkdirSync(CPU_PROF, { recursive: true });
    nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${resolve(CPU_PROF)}`);
  }
  const startedAt = performance.now();
  const startedWall = Date.now();
  const child = compiledMain
    ? spawnCompiledController(compiledMain, kubeconfigPath, identity, args, nodeArgs)
    : spawnController(kubeconfigPath, identity, args);
  controllers.push(child);
  const pid = child.child.pid;
  if (pid === undefined) throw new Error("the controller process did not start");
  child.child.once("exit", (code, signal) => {
    if (!cleaning && !stopping.has(child)) {
      log(`controller ${pid} exited unexpectedly (${signal ?? code}); its log ends with:`);
      process.stderr.write(`${child.output().slice(-3000)}\n`);
    }
  });
  return { process: child, port, pid, startedAt, startedWall };
}

const stopping = new Set<ControllerProcess>();
async function stopController(c: StartedController): Promise<number> {
  stopping.add(c.process);
  const t = performance.now();
  const timer = setTimeout(() => c.process.child.kill("SIGKILL"), 35_000);
  await c.process.kill("SIGTERM");
  clearTimeout(timer);
  controllers.splice(controllers.indexOf(c.process), 1);
  return performance.now() - t;
}

/** Samples a process's resident set while it runs (VmHWM is read at the end as well). */
function rssSampler(pid: number): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, statusBytes(pid, "VmRSS") ?? 0);
  }, 200);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, statusBytes(pid, "VmHWM") ?? 0);
    },
  };
}

function latencies(created: Map<string, number>, watch: ReadyWatch): number[] {
  const out: number[] = [];
  for (const [name, at] of created) {
    const ready = watch.readyAt.get(name);
    if (ready !== undefined) out.push(Math.max(0, ready - at));
  }
  return out;
}

function cpuLine(cpu: Map<string, number>, wall: number): string {
  return [...cpu]
    .map(([name, s]) => `${name} ${s.toFixed(1)} s (${Math.round((s / wall) * 100)}%)`)
    .join(", ");
}

// ------------------------------------------------------------------------------------------------ phases

interface Figures {
  n: number;
  mode: string;
  workers: number;
  concurrency: number;
  machine: string;
  loadBefore: string;
  allReadyMs: number;
  throughput: number;
  latencyP50Ms: number;
  latencyP90Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  writesPerAllocation: number;
  writesByKind: Record<string, number>;
  readsPerAllocation: number;
  reconcilesPerRequest: number;
  reconcileErrors: number;
  otherReconciles: Record<string, number>;
  eventsDropped: number;
  peakRssBytes: number;
  cpuSeconds: Record<string, number>;
  restart?: {
    shutdownMs: number;
    readyzMs: number;
    probeReadyMs: number;
    peakRssBytes: number;
    heapUsedBytes: number;
    /** Log milestones of the new process, ms after spawn. */
    timeline: [string, number][];
  };
  /** Heap of the controller after the run (prom-client's nodejs_heap_size_used_bytes; no forced GC). */
  heapUsedBytes: number;
  /** The objects the controller caches, as this process measures them (see objectFigures). */
  objects?: ObjectFigures;
  invariants: { problems: string[]; requests: number; allocations: number; ready: number };
  baseline?: {
    allReadyMs: number;
    rate: number;
    ratio: number;
    latencyP50Ms: number;
    latencyP99Ms: number;
    retries: number;
    cpuSeconds: Record<string, number>;
  };
}

async function main(): Promise<number> {
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "?"}, Node ${process.version}; tree ${treeVersion()}`;
  log(`N=${N} workers=${WORKERS} concurrency=${CONCURRENCY}; ${machine}; load ${loadAverage()}`);
  if (MODE === "dist" && CONTROLLER_MAIN) compiledMain = resolve(CONTROLLER_MAIN);
  else if (MODE === "dist") {
    const t = performance.now();
    compiledMain = await buildController();
    log(`controller compiled with tsc in ${secs(performance.now() - t)}`);
  }
  const binDir = await resolveBinDir();
  controlPlane = await LocalControlPlane.start({ binDir, handleSignals: false });
  const cp = controlPlane;
  const crds = await loadProjectCrds();
  if (!crds) throw new Error("src/api/crds.ts not found");
  await cp.installCrds(crds);
  log(`control plane ${cp.version} at ${cp.server}; CRDs installed`);
  const kubeConfig = await loadKubeConfig(cp.kubeconfigPath);
  const client = new KubeClient(kubeConfig, { userAgent: "kubipam-bench" });

  const processes = new Map<string, number>();
  for (const pid of cp.pids) processes.set(processNameOf(pid), pid);
  processes.set("bench", process.pid);
  const meter = new CpuMeter(() => processes);

  // ---------------------------------------------------------------- controller run
  const ns = "bench";
  await createNamespace(client, ns);
  await createNamespace(client, LEASE_NAMESPACE);
  let controller = await startController(cp.kubeconfigPath);
  processes.set("controller", controller.pid);
  await until("controller /readyz", 60_000, async () => ((await readyz(controller)) ? true : undefined));
  await createRanges(client, ns);
  await until("ranges Ready", 30_000, async () => {
    const list = await client.list<IPAMRange>(ipamRangeResource, { namespace: ns });
    return list.items.length === RANGES.length && list.items.every((r) => r.status?.state === "Ready")
      ? true
      : undefined;
  });
  log(`controller ${controller.pid} ready; ranges Ready: ${RANGES.map((r) => r.name).join(", ")}`);

  const watch = new ReadyWatch(client, ns);
  watches.push(watch);
  await watch.start();
  const before = await scrape(controller.port);
  const loadBefore = loadAverage();
  const rss = rssSampler(controller.pid);
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

  const WRITE_VERBS = new Set(["create", "update", "patch", "delete"]);
  const writesByKind: Record<string, number> = {};
  for (const s of delta) {
    if (s.name !== "rest_client_requests_total" || s.value === 0) continue;
    if (!WRITE_VERBS.has(s.labels.verb ?? "")) continue;
    const key = `${s.labels.verb} ${s.labels.resource} ${s.labels.code}`;
    writesByKind[key] = (writesByKind[key] ?? 0) + s.value;
  }
  const writes = Object.values(writesByKind).reduce((a, b) => a + b, 0);
  const reads = sumOf(delta, "rest_client_requests_total", { verb: (v) => v === "get" || v === "list" });
  const otherReconciles: Record<string, number> = {};
  for (const name of ["ipamrange", "ipamallocation"]) {
    otherReconciles[name] = sumOf(delta, "controller_runtime_reconcile_total", { controller: name });
  }

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
    writesPerAllocation: writes / N,
    writesByKind,
    readsPerAllocation: reads / N,
    reconcilesPerRequest:
      sumOf(delta, "controller_runtime_reconcile_total", { controller: "ipamrequest" }) / N,
    reconcileErrors: sumOf(delta, "controller_runtime_reconcile_errors_total"),
    otherReconciles,
    eventsDropped: sumOf(delta, "events_dropped_total"),
    peakRssBytes: peakRss,
    heapUsedBytes: sumOf(after, "nodejs_heap_size_used_bytes"),
    cpuSeconds: Object.fromEntries(cpuRun.cpu),
    invariants: { problems: [], requests: 0, allocations: 0, ready: 0 },
  };
  if (watch.relistObserved > 0) log(`note: ${watch.relistObserved} Ready transitions seen only in a relist`);

  // ---------------------------------------------------------------- restart with N allocations in place
  if (RESTART) {
    const shutdownMs = await stopController(controller);
    log(`controller stopped (SIGTERM) in ${millis(shutdownMs)}; starting a new one`);
    controller = await startController(cp.kubeconfigPath);
    processes.set("controller", controller.pid);
    const rss2 = rssSampler(controller.pid);
    const probe = "probe-after-restart";
    const probeCreate = client.create(ipamRequestResource, requestObject(ns, probe, RANGES[0] as RangeSpec));
    const readyzAt = until(
      "restarted controller /readyz",
      60_000,
      async () => ((await readyz(controller)) ? performance.now() : undefined),
      20,
    );
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
      heapUsedBytes: sumOf(heap2, "nodejs_heap_size_used_bytes"),
      timeline: startTimeline(controller),
    };
    log(`restart: /readyz after ${millis(readyzMs)}, probe Ready after ${millis(probeReadyMs)}`);
  }

  // ---------------------------------------------------------------- invariants
  let problems: string[] = [];
  try {
    await until(
      "invariants",
      60_000,
      async () => {
        problems = await checkInvariants(client, { namespaces: [ns], allReady: true });
        return problems.length === 0 ? true : undefined;
      },
      1_000,
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
    ready: requests.items.filter((r) => r.status?.state === "Ready").length,
  };
  log(
    `invariants: ${problems.length} problems; ${figures.invariants.ready}/${figures.invariants.requests} Ready, ` +
      `${figures.invariants.allocations} allocation objects`,
  );
  await watch.stop();
  await stopController(controller);
  processes.delete("controller");

  // ---------------------------------------------------------------- baseline
  if (BASELINE) figures.baseline = await baseline(client, cp.kubeconfigPath, meter, processes, figures);

  report(figures);
  if (JSON_OUT) writeFileSync(JSON_OUT, `${JSON.stringify(figures, null, 2)}\n`);
  client.close();
  return problems.length === 0 ? 0 : 1;
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

interface ObjectFigures {
  /** JSON bytes per request and per allocation object as the API serves them (with managedFields). */
  requestBytes: number;
  allocationBytes: number;
  /** Share of those bytes that is metadata.managedFields. */
  managedFieldsShare: number;
  /** Heap held by all of them parsed (measured here with forced GCs), and without managedFields. */
  heapBytes: number;
  heapBytesWithoutManagedFields: number;
}

/**
 * What the controller's informer caches hold, measured in this process: JSON sizes, and the V8 heap the
 * parsed objects take — with and without metadata.managedFields (which the controller never reads).
 */
function objectFigures(requests: IPAMRequest[], allocations: IPAMAllocation[]): ObjectFigures {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const json = [...requests, ...allocations].map((o) => JSON.stringify(o));
  const bytes = (list: readonly object[]) => list.reduce((sum, o) => sum + JSON.stringify(o).length, 0);
  const strip = (o: KubeObject): KubeObject => {
    const { managedFields: _, ...metadata } = o.metadata;
    return { ...o, metadata };
  };
  const total = bytes(requests) + bytes(allocations);
  const stripped = bytes(requests.map(strip)) + bytes(allocations.map(strip));
  const heldHeap = (transform: (o: KubeObject) => KubeObject): number => {
    gc();
    gc();
    const start = process.memoryUsage().heapUsed;
    const held = json.map((text) => transform(JSON.parse(text)));
    gc();
    gc();
    const used = process.memoryUsage().heapUsed - start;
    if (held.length < 0) console.log(held); // keeps `held` alive until here
    return used;
  };
  return {
    requestBytes: bytes(requests) / Math.max(1, requests.length),
    allocationBytes: bytes(allocations) / Math.max(1, allocations.length),
    managedFieldsShare: 1 - stripped / total,
    heapBytes: heldHeap((o) => o),
    heapBytesWithoutManagedFields: heldHeap(strip),
  };
}

function processNameOf(pid: number): string {
  // /proc/<pid>/comm is at most 15 characters: "kube-apiserver" and "etcd" fit.
  const name = processName(pid);
  return name.includes("apiserver") ? "kube-apiserver" : name.includes("etcd") ? "etcd" : name;
}

/**
 * The same workload without the controller: the benchmark client creates N fresh requests with the
 * same concurrency, and a child process (bench/e2e-baseline.ts) does, for each as soon as its create
 * returned, the three writes of one allocation with WORKERS in flight. Completion is observed by the
 * same watch as in the controller run.
 */
async function baseline(
  client: KubeClient,
  kubeconfigPath: string,
  meter: CpuMeter,
  processes: Map<string, number>,
  figures: Figures,
): Promise<NonNullable<Figures["baseline"]>> {
  const ns = "bench-baseline";
  await createNamespace(client, ns);
  const ranges = await createRanges(client, ns);
  const child = fork(join(root, "bench/e2e-baseline.ts"), [], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  baselineChild = child;
  let finished: Extract<FromBaseline, { type: "finished" }> | undefined;
  let failure: string | undefined;
  let ready = false;
  child.on("message", (m: FromBaseline) => {
    if (m.type === "ready") ready = true;
    else if (m.type === "finished") finished = m;
    else if (m.type === "error") failure = m.message;
  });
  const send = (m: ToBaseline) => child.send(m);
  const baselineRanges: BaselineRange[] = RANGES.map((r) => ({
    namespace: ns,
    name: r.name,
    uid: ranges.get(r.name)?.metadata.uid ?? "",
    family: r.family,
    pool: r.ranges,
    size: r.size,
  }));
  send({ type: "init", kubeconfig: kubeconfigPath, workers: WORKERS, ranges: baselineRanges });
  await until("baseline process ready", 60_000, () => {
    if (failure) throw new Error(failure);
    return ready ? true : undefined;
  });
  if (child.pid !== undefined) processes.set("baseline", child.pid);

  const watch = new ReadyWatch(client, ns);
  watches.push(watch);
  await watch.start();
  const created = new Map<string, number>();
  log(`baseline: ${N} requests, ${WORKERS} writers, no controller`);
  meter.start();
  const t0 = performance.now();
  await createRequests(client, ns, N, CONCURRENCY, (name, uid, range, at) => {
    created.set(name, at);
    send({ type: "request", namespace: ns, name, uid, range: range.name });
  });
  send({ type: "end" });
  await watch.waitFor(`baseline: ${N} requests Ready`, ALL_READY_TIMEOUT_MS, undefined, N);
  const allReadyMs = Math.max(...watch.readyAt.values()) - t0;
  const cpu = meter.stop();
  await until("baseline process finished", 30_000, () => {
    if (failure) throw new Error(failure);
    return finished;
  });
  await watch.stop();
  processes.delete("baseline");
  const lat = latencies(created, watch);
  const rate = (N * 1000) / allReadyMs;
  log(`baseline: all Ready after ${secs(allReadyMs)}; cpu: ${cpuLine(cpu.cpu, cpu.wall)}`);
  return {
    allReadyMs,
    rate,
    ratio: figures.throughput / rate,
    latencyP50Ms: percentile(lat, 0.5),
    latencyP99Ms: percentile(lat, 0.99),
    retries: finished?.retries ?? 0,
    cpuSeconds: Object.fromEntries(cpu.cpu),
  };
}

function perAllocation(cpu: Record<string, number>, n: number): string {
  const parts = Object.entries(cpu).map(([name, s]) => `${name} ${((s * 1000) / n).toFixed(2)}`);
  const total = Object.values(cpu).reduce((a, b) => a + b, 0);
  return `${parts.join(", ")}; total ${((total * 1000) / n).toFixed(2)}`;
}

function report(f: Figures): void {
  const rows: [string, string, string][] = [];
  const ok = (pass: boolean) => (pass ? "met" : "MISSED");
  rows.push(["requests Ready", `${f.n} (3 ranges: IPv4 /32, IPv4 /24, IPv6 /64)`, ""]);
  const full = f.n >= 10_000;
  rows.push([
    "time until all Ready",
    secs(f.allReadyMs),
    full ? `≤ 60 s for 10,000: ${ok(f.allReadyMs <= 60_000)}` : "(target is for N = 10,000)",
  ]);
  rows.push(["throughput", `${f.throughput.toFixed(0)} allocations/s`, ""]);
  rows.push([
    "creation→Ready latency",
    `p50 ${millis(f.latencyP50Ms)}, p90 ${millis(f.latencyP90Ms)}, p99 ${millis(f.latencyP99Ms)}, max ${millis(f.latencyMaxMs)}`,
    "",
  ]);
  if (f.baseline) {
    rows.push([
      "baseline (no controller)",
      `${f.baseline.rate.toFixed(0)} allocations/s (all Ready ${secs(f.baseline.allReadyMs)}; p50 ${millis(f.baseline.latencyP50Ms)}, p99 ${millis(f.baseline.latencyP99Ms)})`,
      "",
    ]);
    rows.push([
      "throughput / baseline",
      f.baseline.ratio.toFixed(2),
      `≥ 0.7: ${ok(f.baseline.ratio >= 0.7)}`,
    ]);
  }
  rows.push(["API writes per allocation", f.writesPerAllocation.toFixed(2), "minimum 3"]);
  for (const [kind, count] of Object.entries(f.writesByKind).sort((a, b) => b[1] - a[1])) {
    rows.push([`  ${kind}`, `${count} (${(count / f.n).toFixed(3)}/allocation)`, ""]);
  }
  rows.push(["API reads (get/list) per allocation", f.readsPerAllocation.toFixed(3), ""]);
  rows.push([
    "reconciles per request",
    f.reconcilesPerRequest.toFixed(2),
    `errors ${f.reconcileErrors}; ranges ${f.otherReconciles.ipamrange}, allocations ${f.otherReconciles.ipamallocation}`,
  ]);
  rows.push(["events dropped", String(f.eventsDropped), ""]);
  rows.push(["controller heap used after the run", mb(f.heapUsedBytes), "nodejs_heap_size_used_bytes"]);
  const rssLimit = 200 * 1024 * 1024;
  rows.push([
    "controller peak RSS",
    mb(f.peakRssBytes),
    full ? `≤ 200 MB: ${ok(f.peakRssBytes <= rssLimit)}` : "",
  ]);
  if (f.restart) {
    rows.push(["restart: SIGTERM → exited", millis(f.restart.shutdownMs), ""]);
    rows.push([
      "restart: start → /readyz 200",
      millis(f.restart.readyzMs),
      full ? `≤ 5 s: ${ok(f.restart.readyzMs <= 5_000)}` : "",
    ]);
    rows.push([
      "restart: start → new request Ready",
      millis(f.restart.probeReadyMs),
      full ? `≤ 5 s: ${ok(f.restart.probeReadyMs <= 5_000)}` : "",
    ]);
    rows.push([
      "restarted controller peak RSS",
      mb(f.restart.peakRssBytes),
      full ? `≤ 200 MB: ${ok(f.restart.peakRssBytes <= rssLimit)}` : "",
    ]);
  }
  if (f.restart) {
    rows.push(["restarted controller heap used", mb(f.restart.heapUsedBytes), ""]);
    for (const [msg, at] of f.restart.timeline) rows.push([`  +${millis(at)}`, `log: "${msg}"`, ""]);
  }
  if (f.objects) {
    const o = f.objects;
    rows.push([
      "cached objects (requests + allocations)",
      `${o.requestBytes.toFixed(0)} + ${o.allocationBytes.toFixed(0)} JSON bytes each, ${(o.managedFieldsShare * 100).toFixed(0)}% managedFields`,
      "",
    ]);
    rows.push([
      "  heap for all of them parsed",
      `${mb(o.heapBytes)}; ${mb(o.heapBytesWithoutManagedFields)} without managedFields`,
      "",
    ]);
  }
  const inv = f.invariants;
  rows.push([
    "invariants",
    inv.problems.length === 0
      ? "no overlaps, all Ready, allocations == requests"
      : `${inv.problems.length} problems`,
    `${inv.ready}/${inv.requests} Ready, ${inv.allocations} allocation objects`,
  ]);
  rows.push(["CPU during the run", cpuLine(new Map(Object.entries(f.cpuSeconds)), f.allReadyMs / 1000), ""]);
  rows.push(["  CPU ms per allocation", perAllocation(f.cpuSeconds, f.n), ""]);
  if (f.baseline) {
    rows.push([
      "CPU during the baseline",
      cpuLine(new Map(Object.entries(f.baseline.cpuSeconds)), f.baseline.allReadyMs / 1000),
      "",
    ]);
    rows.push(["  CPU ms per allocation", perAllocation(f.baseline.cpuSeconds, f.n), ""]);
  }
  rows.push(["machine", `${f.machine}; load before the run ${f.loadBefore}`, ""]);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(
    `\nkubipam end-to-end benchmark: controller ${f.mode}, workers ${f.workers}, create concurrency ${f.concurrency}`,
  );
  for (const [a, b, c] of rows) console.log(`  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd());
  for (const p of inv.problems.slice(0, 20)) console.log(`  problem: ${p}`);
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (err) {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  const c = controllers[0];
  if (c) process.stderr.write(`controller log tail:\n${c.output().slice(-3000)}\n`);
  exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(exitCode);
