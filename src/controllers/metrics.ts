// kubipam's own Prometheus metrics: per-range usage and allocation outcomes.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { IpamMetrics } from "./ports.ts";

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class PrometheusIpamMetrics implements IpamMetrics {
  private readonly size: Gauge<"namespace" | "range">;
  private readonly used: Gauge<"namespace" | "range">;
  private readonly free: Gauge<"namespace" | "range">;
  private readonly allocations: Counter<"range">;
  private readonly releases: Counter<"range">;
  private readonly failures: Counter<"range" | "reason">;
  private readonly latency: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.size = new Gauge({
      name: "kubipam_range_size_addresses",
      help: "Addresses in the range's pool (IPv6 figures are rounded to float precision).",
      labelNames: ["namespace", "range"],
      registers,
    });
    this.used = new Gauge({
      name: "kubipam_range_allocated_addresses",
      help: "Addresses allocated in the range.",
      labelNames: ["namespace", "range"],
      registers,
    });
    this.free = new Gauge({
      name: "kubipam_range_free_addresses",
      help: "Addresses free in the range.",
      labelNames: ["namespace", "range"],
      registers,
    });
    this.allocations = new Counter({
      name: "kubipam_allocations_total",
      help: "Blocks allocated and published to a request's status.",
      labelNames: ["range"],
      registers,
    });
    this.releases = new Counter({
      name: "kubipam_releases_total",
      help: "Blocks released.",
      labelNames: ["range"],
      registers,
    });
    this.failures = new Counter({
      name: "kubipam_allocation_failures_total",
      help: "Allocation attempts that failed: busy (no space), invalid (bad request), conflict (lost a race).",
      labelNames: ["range", "reason"],
      registers,
    });
    this.latency = new Histogram({
      name: "kubipam_allocation_latency_seconds",
      help: "Time from a request's creation to its allocation being published.",
      buckets: LATENCY_BUCKETS,
      registers,
    });
  }

  allocated(rangeKey: string, latencySeconds: number | undefined): void {
    this.allocations.inc({ range: rangeKey });
    if (latencySeconds !== undefined) this.latency.observe(latencySeconds);
  }

  released(rangeKey: string): void {
    this.releases.inc({ range: rangeKey });
  }

  failed(rangeKey: string, reason: "busy" | "invalid" | "conflict"): void {
    this.failures.inc({ range: rangeKey, reason });
  }

  rangeUsage(
    namespace: string,
    name: string,
    usage: { size: bigint; allocated: bigint; free: bigint },
  ): void {
    const labels = { namespace, range: name };
    this.size.set(labels, Number(usage.size));
    this.used.set(labels, Number(usage.allocated));
    this.free.set(labels, Number(usage.free));
  }

  rangeGone(namespace: string, name: string): void {
    const labels = { namespace, range: name };
    this.size.remove(labels);
    this.used.remove(labels);
    this.free.remove(labels);
  }
}
