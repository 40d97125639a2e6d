// The figures of an end-to-end benchmark run, how some of them are derived, and the report.

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { IPAMAllocation, IPAMRequest } from "../src/api/types.ts";
import { allocationCacheTransform, cacheTables, requestCacheTransform } from "../src/controllers/cache.ts";
import type { KubeObject } from "../src/runtime/kube.ts";
import type { MemoryAtPeak } from "./e2e-controller.ts";
import { mb, millis, type ReadyWatch, secs } from "./e2e-util.ts";

export interface Figures {
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
  writesWithoutEventsPerAllocation: number;
  writesByKind: Record<string, number>;
  readsPerAllocation: number;
  reconcilesPerRequest: number;
  reconcileErrors: number;
  otherReconciles: Record<string, number>;
  eventsDropped: number;
  peakRssBytes: number;
  /** V8 figures scraped when RSS peaked (once a second). */
  memoryAtPeak?: MemoryAtPeak;
  cpuSeconds: Record<string, number>;
  restart?: {
    shutdownMs: number;
    readyzMs: number;
    probeReadyMs: number;
    peakRssBytes: number;
    memoryAtPeak?: MemoryAtPeak | undefined;
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

export interface ObjectFigures {
  /** JSON bytes per request and per allocation object as the API serves them (with managedFields). */
  requestBytes: number;
  allocationBytes: number;
  /** Share of those bytes that is metadata.managedFields. */
  managedFieldsShare: number;
  /** Heap held by all of them parsed (measured here with forced GCs), and without managedFields. */
  heapBytes: number;
  heapBytesWithoutManagedFields: number;
  /** The same objects as the controller's informers keep them (cacheTransform). */
  heapBytesAsCached: number;
}

/**
 * What the controller's informer caches hold, measured in this process: JSON sizes, and the V8 heap the
 * parsed objects take — with and without metadata.managedFields (which the controller never reads).
 */
export function objectFigures(requests: IPAMRequest[], allocations: IPAMAllocation[]): ObjectFigures {
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
  const asCached = (): number => {
    const tables = cacheTables();
    const request = requestCacheTransform(tables);
    const allocation = allocationCacheTransform(tables);
    return heldHeap((o) =>
      o.kind === "IPAMAllocation" ? allocation(o as IPAMAllocation) : request(o as IPAMRequest),
    );
  };
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
    // What the controller's informers keep (src/controllers/cache.ts), one interner for all, as there.
    heapBytesAsCached: asCached(),
  };
}

export function latencies(created: Map<string, number>, watch: ReadyWatch): number[] {
  const out: number[] = [];
  for (const [name, at] of created) {
    const ready = watch.readyAt.get(name);
    if (ready !== undefined) out.push(Math.max(0, ready - at));
  }
  return out;
}

export function cpuLine(cpu: Map<string, number>, wall: number): string {
  return [...cpu]
    .map(([name, s]) => `${name} ${s.toFixed(1)} s (${Math.round((s / wall) * 100)}%)`)
    .join(", ");
}

function perAllocation(cpu: Record<string, number>, n: number): string {
  const parts = Object.entries(cpu).map(([name, s]) => `${name} ${((s * 1000) / n).toFixed(2)}`);
  const total = Object.values(cpu).reduce((a, b) => a + b, 0);
  return `${parts.join(", ")}; total ${((total * 1000) / n).toFixed(2)}`;
}

export function report(f: Figures): void {
  const rows: [string, string, string][] = [];
  const ok = (pass: boolean) => (pass ? "met" : "MISSED");
  rows.push(["requests Ready", `${f.n} (3 ranges: IPv4 /32, IPv4 /24, IPv6 /64)`, ""]);
  const full = f.n >= 10_000;
  rows.push([
    "time until all Ready",
    secs(f.allReadyMs),
    full ? `≤ 45 s for 10,000 (issue #11): ${ok(f.allReadyMs <= 45_000)}` : "(target is for N = 10,000)",
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
      `≥ 0.9 (issue #11): ${ok(f.baseline.ratio >= 0.9)}`,
    ]);
  }
  rows.push(["API writes per allocation", f.writesPerAllocation.toFixed(2), "minimum 2 (record, status)"]);
  rows.push([
    "  without events",
    f.writesWithoutEventsPerAllocation.toFixed(2),
    `≤ 2.1: ${ok(f.writesWithoutEventsPerAllocation <= 2.1)}`,
  ]);
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
  const rssLimit = 100 * 1024 * 1024;
  rows.push([
    "controller peak RSS",
    mb(f.peakRssBytes),
    full ? `≤ 100 MiB: ${ok(f.peakRssBytes <= rssLimit)}` : "",
  ]);
  memoryRows(rows, f.memoryAtPeak);
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
      full ? `≤ 2 s: ${ok(f.restart.probeReadyMs <= 2_000)}` : "",
    ]);
    rows.push([
      "restarted controller peak RSS",
      mb(f.restart.peakRssBytes),
      full ? `≤ 100 MiB: ${ok(f.restart.peakRssBytes <= rssLimit)}` : "",
    ]);
    memoryRows(rows, f.restart.memoryAtPeak);
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
      `${mb(o.heapBytes)}; ${mb(o.heapBytesWithoutManagedFields)} without managedFields; ${mb(o.heapBytesAsCached)} as cached`,
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

/** Where the resident set went when it peaked: V8's heap by space, and memory outside it. */
function memoryRows(rows: [string, string, string][], m: MemoryAtPeak | undefined): void {
  if (!m) return;
  const spaces = Object.entries(m.spaces)
    .filter(([, bytes]) => bytes >= 512 * 1024)
    .sort((a, b) => b[1] - a[1])
    .map(([space, bytes]) => `${space} ${mb(bytes)}`)
    .join(", ");
  rows.push([
    "  at the peak",
    `RSS ${mb(m.rss)}: heap ${mb(m.heapTotal)} (used ${mb(m.heapUsed)}), external ${mb(m.external)}, rest ${mb(m.rss - m.heapTotal - m.external)}`,
    "",
  ]);
  rows.push(["  heap spaces (committed)", spaces, ""]);
}
