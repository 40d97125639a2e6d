// The controller in the end-to-end benchmark: compiled as the image runs it (or through tsx), with
// metrics and probes on one loopback port; started, probed, scraped, measured and stopped.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../src/cli/control-plane/index.ts";
import { type ControllerProcess, spawnController } from "../src/testing/controller-process.ts";
import { atCleanup, cleaningUp } from "./e2e-cleanup.ts";
import {
  CONTROLLER_MAIN,
  CPU_PROF,
  LEADER_ELECT,
  log,
  MODE,
  NODE_FLAGS,
  root,
  WORKERS,
} from "./e2e-options.ts";
import { httpGet, parsePrometheus, type Sample, secs, statusBytes, sumOf } from "./e2e-util.ts";

export const LEASE_NAMESPACE = "bench-lease";

export interface StartedController {
  process: ControllerProcess;
  port: number;
  pid: number;
  /** performance.now() and Date.now() at spawn. */
  startedAt: number;
  startedWall: number;
  /** Aborts when the process exits: waits for it then give up at once. */
  exited: AbortSignal;
}

/** Milestones of a controller's start, from its JSON log: ms after spawn for each first occurrence. */
export function startTimeline(c: StartedController): [string, number][] {
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
      const entry = JSON.parse(line) as { ts?: string; msg?: string; logger?: string };
      if (!entry.msg || !entry.ts || !wanted.includes(entry.msg)) continue;
      // The leader lease and the allocation fence log the same message: told apart by logger.
      const label = entry.logger?.includes(".fence") ? `${entry.msg} (fence)` : entry.msg;
      if (!seen.has(label)) seen.set(label, Date.parse(entry.ts) - c.startedWall);
    } catch {
      // not a log entry
    }
  }
  return [...seen].sort((a, b) => a[1] - b[1]);
}

export async function scrape(port: number): Promise<Sample[]> {
  const res = await httpGet(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheus(res.body);
}

/** Whether the controller's /readyz answers 200 now. */
export async function readyz(c: StartedController): Promise<boolean> {
  try {
    return (await httpGet(`http://127.0.0.1:${c.port}/readyz`, 1_000)).status === 200;
  } catch {
    return false;
  }
}

/**
 * Compiles src/ with the project's build settings into a private temporary folder (the working tree is
 * not touched) and returns the path of cli/main.js. The folder gets `"type": "module"` and a link to
 * node_modules, like the image's /app.
 */
async function buildController(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "kubipam-bench-"));
  atCleanup(() => rmSync(dir, { recursive: true, force: true }));
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

let compiledMain: string | undefined;

/** What `--controller` asks for: compiles src/ (dist), takes `--controller-main`, or nothing (tsx). */
export async function prepareController(): Promise<void> {
  if (MODE === "dist" && CONTROLLER_MAIN) compiledMain = resolve(CONTROLLER_MAIN);
  else if (MODE === "dist") {
    const t = performance.now();
    compiledMain = await buildController();
    log(`controller compiled with tsc in ${secs(performance.now() - t)}`);
  }
}

/** The controllers running now, each with the function that takes it off the cleanup list. */
const running = new Map<ControllerProcess, () => void>();
const stopping = new Set<ControllerProcess>();
let controllerSerial = 0;

async function sigterm(c: ControllerProcess, graceMs: number): Promise<void> {
  const timer = setTimeout(() => c.child.kill("SIGKILL"), graceMs);
  await c.kill("SIGTERM");
  clearTimeout(timer);
}

export async function startController(kubeconfigPath: string): Promise<StartedController> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = ["--metrics-bind-address", address, "--health-probe-bind-address", address];
  args.push("--workers", String(WORKERS));
  if (LEADER_ELECT) args.push("--leader-elect", "--leader-election-namespace", LEASE_NAMESPACE);
  const identity = `bench-controller-${++controllerSerial}`;
  // Node 20 refuses --cpu-prof in NODE_OPTIONS: it goes on the command line of the compiled controller.
  const nodeArgs: string[] = [...NODE_FLAGS];
  if (CPU_PROF) {
    mkdirSync(CPU_PROF, { recursive: true });
    nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${resolve(CPU_PROF)}`);
  }
  const startedAt = performance.now();
  const startedWall = Date.now();
  // Compiled, it runs with the product's defaults, as the image does (through tsx, as the tests do).
  const child = spawnController(kubeconfigPath, identity, args, {
    nodeArgs,
    ...(compiledMain ? { main: compiledMain, defaults: "product" as const } : {}),
  });
  running.set(
    child,
    atCleanup(() => sigterm(child, 10_000)),
  );
  const pid = child.child.pid;
  if (pid === undefined) throw new Error("the controller process did not start");
  const exited = new AbortController();
  child.child.once("exit", (code, signal) => {
    exited.abort(new Error(`the controller exited (${signal ?? code})`));
    if (!cleaningUp() && !stopping.has(child)) {
      log(`controller ${pid} exited unexpectedly (${signal ?? code}); its log ends with:`);
      process.stderr.write(`${child.output().slice(-3000)}\n`);
    }
  });
  return { process: child, port, pid, startedAt, startedWall, exited: exited.signal };
}

/** SIGTERM (SIGKILL after 35 s); resolves with the time it took to exit. */
export async function stopController(c: StartedController): Promise<number> {
  stopping.add(c.process);
  const t = performance.now();
  await sigterm(c.process, 35_000);
  running.get(c.process)?.();
  running.delete(c.process);
  return performance.now() - t;
}

/** The end of the log of the oldest controller still running (for a failed run's message). */
export function controllerLogTail(): string | undefined {
  const [first] = running.keys();
  return first?.output().slice(-3000);
}

/** The controller's memory when its resident set peaked (prom-client's default metrics, bytes). */
export interface MemoryAtPeak {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  /** V8 heap spaces (new, old, code, large_object, ...): committed size. */
  spaces: Record<string, number>;
}

/**
 * Samples a process's resident set while it runs (VmHWM is read at the end as well) and, once a second,
 * the V8 figures of its /metrics, keeping those of the scrape at which VmRSS was highest.
 */
export function rssSampler(
  pid: number,
  port?: number,
): { stop(): number; atPeak(): MemoryAtPeak | undefined } {
  let peak = 0;
  let peakScraped = 0;
  let atPeak: MemoryAtPeak | undefined;
  let ticks = 0;
  let scraping = false;
  const timer = setInterval(() => {
    const rss = statusBytes(pid, "VmRSS") ?? 0;
    peak = Math.max(peak, rss);
    if (port === undefined || scraping || ticks++ % 5 !== 0) return;
    scraping = true;
    scrape(port)
      .then((samples) => {
        const now = statusBytes(pid, "VmRSS") ?? 0;
        if (now < peakScraped) return;
        peakScraped = now;
        const spaces: Record<string, number> = {};
        for (const s of samples) {
          if (s.name === "nodejs_heap_space_size_total_bytes") spaces[s.labels.space ?? "?"] = s.value;
        }
        atPeak = {
          rss: now,
          heapTotal: sumOf(samples, "nodejs_heap_size_total_bytes"),
          heapUsed: sumOf(samples, "nodejs_heap_size_used_bytes"),
          external: sumOf(samples, "nodejs_external_memory_bytes"),
          spaces,
        };
      })
      .catch(() => {})
      .finally(() => {
        scraping = false;
      });
  }, 200);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, statusBytes(pid, "VmHWM") ?? 0);
    },
    atPeak: () => atPeak,
  };
}
