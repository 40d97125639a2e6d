// The baseline phase of the end-to-end benchmark (the parent side of bench/e2e-baseline.ts).

import { fork } from "node:child_process";
import { join } from "node:path";
import type { KubeClient } from "../src/runtime/kube.ts";
import { pollUntil } from "../src/runtime/util.ts";
import type { BaselineRange, FromBaseline, ToBaseline } from "./e2e-baseline.ts";
import { atCleanup } from "./e2e-cleanup.ts";
import { cpuLine, type Figures, latencies } from "./e2e-figures.ts";
import { ALL_READY_TIMEOUT_MS, CONCURRENCY, log, N, root, WORKERS } from "./e2e-options.ts";
import { type CpuMeter, percentile, ReadyWatch, secs } from "./e2e-util.ts";
import { createNamespace, createRanges, createRequests, RANGES } from "./e2e-workload.ts";

/**
 * The same workload without the controller: the benchmark client creates N fresh requests with the
 * same concurrency, and a child process (bench/e2e-baseline.ts) does, for each as soon as its create
 * returned, the three writes of one allocation with WORKERS in flight. Completion is observed by the
 * same watch as in the controller run.
 */
export async function baseline(
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
  atCleanup(() => {
    child.kill("SIGKILL");
  });
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
  await pollUntil(
    () => {
      if (failure) throw new Error(failure);
      return ready ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 50, description: "the baseline process to be ready" },
  );
  if (child.pid !== undefined) processes.set("baseline", child.pid);

  const watch = new ReadyWatch(client, ns);
  const unwatch = atCleanup(() => watch.stop());
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
  await pollUntil(
    () => {
      if (failure) throw new Error(failure);
      return finished;
    },
    { timeoutMs: 30_000, intervalMs: 50, description: "the baseline process to finish" },
  );
  await watch.stop();
  unwatch();
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
