// Helpers of the end-to-end benchmark (bench/e2e.ts): process accounting from /proc,
// Prometheus text parsing, percentiles, and the watch that notices when requests become Ready.

import { readFileSync } from "node:fs";
import http from "node:http";
import type { IPAMRequest } from "../src/api/types.ts";
import { ipamRequestResource } from "../src/api/types.ts";
import { isGone, type KubeClient } from "../src/runtime/kube.ts";
import { sleep } from "../src/runtime/util.ts";
import { isAllocated } from "../src/testing/status.ts";

// ---------------------------------------------------------------------------------------------- /proc

const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux

/** CPU seconds (user + system) a process has used so far, or undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name (which may contain spaces).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM) in bytes, or undefined. */
export function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return `pid ${pid}`;
  }
}

/** The 1-minute load average and the number of CPUs, to judge how shared the machine was. */
export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/** CPU seconds per named process between `start()` and `stop()`. */
export class CpuMeter {
  private readonly begin = new Map<string, number>();
  private beginWall = 0;

  constructor(private readonly processes: () => Map<string, number>) {}

  start(): void {
    this.begin.clear();
    for (const [name, pid] of this.processes()) {
      const cpu = name === "bench" ? ownCpuSeconds() : cpuSeconds(pid);
      if (cpu !== undefined) this.begin.set(name, cpu);
    }
    this.beginWall = performance.now();
  }

  /** Per process CPU seconds since `start()`, and the wall seconds. */
  stop(): { wall: number; cpu: Map<string, number> } {
    const cpu = new Map<string, number>();
    for (const [name, pid] of this.processes()) {
      const now = name === "bench" ? ownCpuSeconds() : cpuSeconds(pid);
      if (now === undefined) continue;
      cpu.set(name, now - (this.begin.get(name) ?? 0));
    }
    return { wall: (performance.now() - this.beginWall) / 1000, cpu };
  }
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---------------------------------------------------------------------------------------------- HTTP

/** GET on loopback; resolves with status and body, rejects on connection errors or after `timeoutMs`. */
export function httpGet(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
  });
}

// ---------------------------------------------------------------------------------------------- metrics

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (samples only; comments and types are skipped). */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const l of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] ?? ""] = (l[2] ?? "").replace(/\\(.)/g, "$1");
    }
    samples.push({ name: match[1] ?? "", labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels match `where` (a value or a predicate per label). */
export function sumOf(
  samples: readonly Sample[],
  name: string,
  where: Record<string, string | ((v: string) => boolean)> = {},
): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    let ok = true;
    for (const [k, want] of Object.entries(where)) {
      const v = s.labels[k] ?? "";
      if (typeof want === "string" ? v !== want : !want(v)) {
        ok = false;
        break;
      }
    }
    if (ok) total += s.value;
  }
  return total;
}

/** `after - before` for every sample of `after` (counters), keyed by name and labels. */
export function diffSamples(before: readonly Sample[], after: readonly Sample[]): Sample[] {
  const key = (s: Sample) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
  const old = new Map(before.map((s) => [key(s), s.value]));
  return after.map((s) => ({ ...s, value: s.value - (old.get(key(s)) ?? 0) }));
}

// ---------------------------------------------------------------------------------------------- figures

/** Nearest-rank percentile of unsorted values (q in 0..1). */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export const mb = (bytes: number | undefined): string =>
  bytes === undefined ? "?" : `${(bytes / 1024 / 1024).toFixed(0)} MB`;
export const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const millis = (ms: number): string => `${ms.toFixed(0)} ms`;

// ---------------------------------------------------------------------------------------------- Ready watch

/**
 * Watches the requests of one namespace and records, per name, when this process first saw it Ready
 * (`performance.now()`). Started before the requests are created; relists after 410 Gone and resumes
 * after a closed stream, so no transition is missed.
 */
export class ReadyWatch {
  readonly readyAt = new Map<string, number>();
  /** Names seen Ready only in a relist (their time is the relist's, later than the truth). */
  relistObserved = 0;
  private resourceVersion = "";
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private waiters: { names: Set<string> | undefined; count: number; resolve: () => void }[] = [];
  failure: unknown;

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  async start(): Promise<void> {
    await this.relist(false);
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  /** Resolves when `count` requests (or every name of `names`) were seen Ready; rejects at the deadline. */
  waitFor(
    what: string,
    timeoutMs: number,
    names?: readonly string[],
    count = names?.length ?? 0,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const set = names ? new Set(names) : undefined;
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        const seen = set ? [...set].filter((n) => this.readyAt.has(n)).length : this.readyAt.size;
        reject(new Error(`${what}: ${seen} of ${count} Ready after ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      const waiter = {
        names: set,
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.waiters.push(waiter);
      this.check();
    });
  }

  private satisfied(w: { names: Set<string> | undefined; count: number }): boolean {
    if (!w.names) return this.readyAt.size >= w.count;
    for (const n of w.names) if (!this.readyAt.has(n)) return false;
    return true;
  }

  private check(): void {
    if (this.waiters.length === 0) return;
    const done = this.waiters.filter((w) => this.satisfied(w));
    if (done.length === 0) return;
    this.waiters = this.waiters.filter((w) => !done.includes(w));
    for (const w of done) w.resolve();
  }

  private observe(request: IPAMRequest, relisted: boolean): void {
    const name = request.metadata.name ?? "";
    if (!isAllocated(request) || this.readyAt.has(name)) return;
    this.readyAt.set(name, performance.now());
    if (relisted) this.relistObserved++;
    this.check();
  }

  private async relist(relisted: boolean): Promise<void> {
    const list = await this.client.listAll<IPAMRequest>(ipamRequestResource, { namespace: this.namespace });
    for (const item of list.items) this.observe(item, relisted);
    this.resourceVersion = list.resourceVersion;
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const events = this.client.watch<IPAMRequest>(
          ipamRequestResource,
          { namespace: this.namespace, resourceVersion: this.resourceVersion, allowWatchBookmarks: true },
          signal,
        );
        for await (const event of events) {
          if (event.type === "ERROR") {
            if (event.object.code === 410) await this.relist(true);
            break;
          }
          const rv = event.object.metadata.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (event.type === "ADDED" || event.type === "MODIFIED") this.observe(event.object, false);
        }
      } catch (err) {
        if (signal.aborted) return;
        if (isGone(err)) {
          await this.relist(true).catch((e: unknown) => {
            this.failure = e;
          });
        } else {
          this.failure = err;
          await sleep(200);
        }
      }
    }
  }
}
