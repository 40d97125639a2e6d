// kubipam's own Prometheus metrics: per-range usage and allocation outcomes. Every per-range series
// carries `kind` (IPAMRange | ClusterIPAMRange); the usage gauges name a range by `namespace` (empty for
// a ClusterIPAMRange) and `range`, the counters by its poolKey in `range`.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { type PoolRef, poolKey } from "../api/pool-ref.ts";
import type { IpamMetrics, RangeUsageFigures } from "./ports.ts";

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The per-range usage gauges: which figure each shows, its name and help. */
const USAGE_GAUGES: ReadonlyArray<readonly [keyof RangeUsageFigures, string, string]> = [
  [
    "size",
    "kubipam_range_size_addresses",
    "Addresses in the range's pool (IPv6 figures are rounded to float precision).",
  ],
  ["allocated", "kubipam_range_allocated_addresses", "Addresses allocated in the range."],
  ["free", "kubipam_range_free_addresses", "Addresses free in the range."],
  [
    "excluded",
    "kubipam_range_excluded_addresses",
    "Pool addresses excluded (spec.exclude and the gateway) and not under an allocation.",
  ],
  [
    "cooling",
    "kubipam_range_cooling_addresses",
    "Pool addresses released and cooling down (spec.reuseCooldownSeconds) before they can be allocated again.",
  ],
];

export class PrometheusIpamMetrics implements IpamMetrics {
  private readonly usage: ReadonlyArray<
    readonly [keyof RangeUsageFigures, Gauge<"kind" | "namespace" | "range">]
  >;
  private readonly allocations: Counter<"kind" | "range">;
  private readonly releases: Counter<"kind" | "range">;
  private readonly failures: Counter<"kind" | "range" | "reason">;
  private readonly latency: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.usage = USAGE_GAUGES.map(
      ([figure, name, help]) =>
        [figure, new Gauge({ name, help, labelNames: ["kind", "namespace", "range"], registers })] as const,
    );
    this.allocations = new Counter({
      name: "kubipam_allocations_total",
      help: "Blocks allocated and published to a request's status.",
      labelNames: ["kind", "range"],
      registers,
    });
    this.releases = new Counter({
      name: "kubipam_releases_total",
      help: "Blocks released.",
      labelNames: ["kind", "range"],
      registers,
    });
    this.failures = new Counter({
      name: "kubipam_allocation_failures_total",
      help: "Allocation attempts that failed: busy (no space), invalid (bad request), conflict (lost a race).",
      labelNames: ["kind", "range", "reason"],
      registers,
    });
    this.latency = new Histogram({
      name: "kubipam_allocation_latency_seconds",
      help: "Time from a request's creation to its allocation being published.",
      buckets: LATENCY_BUCKETS,
      registers,
    });
  }

  allocated(pool: PoolRef, latencySeconds: number | undefined): void {
    this.allocations.inc(counterLabels(pool));
    if (latencySeconds !== undefined) this.latency.observe(latencySeconds);
  }

  released(pool: PoolRef): void {
    this.releases.inc(counterLabels(pool));
  }

  failed(pool: PoolRef, reason: "busy" | "invalid" | "conflict"): void {
    this.failures.inc({ ...counterLabels(pool), reason });
  }

  rangeUsage(pool: PoolRef, usage: RangeUsageFigures): void {
    const labels = gaugeLabels(pool);
    for (const [figure, gauge] of this.usage) gauge.set(labels, Number(usage[figure]));
  }

  rangeGone(pool: PoolRef): void {
    const labels = gaugeLabels(pool);
    for (const [, gauge] of this.usage) gauge.remove(labels);
  }
}

function counterLabels(pool: PoolRef): { kind: string; range: string } {
  return { kind: pool.kind, range: poolKey(pool) };
}

function gaugeLabels(pool: PoolRef): { kind: string; namespace: string; range: string } {
  return { kind: pool.kind, namespace: pool.namespace, range: pool.name };
}
