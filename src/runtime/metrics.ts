// Prometheus metrics of the runtime, named like controller-runtime / client-go, on a prom-client Registry.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export { Registry };

export interface RegistryOptions {
  /** Also collect Node's process metrics (`process_*`, `nodejs_*`). Default false. */
  defaultMetrics?: boolean;
}

/** A new Registry; controllers register their own metrics with `registers: [registry]`. */
export function createRegistry(options: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** The registry used when a component is given none. */
export const defaultRegistry: Registry = new Registry();

// Buckets as in client-go's workqueue metrics (1e-8 .. 1e1 s) and controller-runtime's reconcile time.
const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5,
  1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
const REST_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

/** Provides live values for gauges computed at scrape time (e.g. longest running processor). */
export interface QueueGaugeSource {
  unfinishedWorkSeconds(): number;
  longestRunningProcessorSeconds(): number;
}

export class RuntimeMetrics {
  readonly registry: Registry;
  // workqueue
  readonly workqueueDepth: Gauge<"name" | "controller">;
  readonly workqueueAdds: Counter<"name" | "controller">;
  readonly workqueueRetries: Counter<"name" | "controller">;
  readonly workqueueQueueDuration: Histogram<"name" | "controller">;
  readonly workqueueWorkDuration: Histogram<"name" | "controller">;
  readonly workqueueUnfinishedWork: Gauge<"name" | "controller">;
  readonly workqueueLongestRunning: Gauge<"name" | "controller">;
  private readonly queueSources = new Map<string, QueueGaugeSource>();
  // controller
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly activeWorkers: Gauge<"controller">;
  readonly maxConcurrentReconciles: Gauge<"controller">;
  readonly terminalReconcileErrors: Counter<"controller">;
  // rest client
  readonly restRequests: Counter<"verb" | "resource" | "code">;
  readonly restRequestDuration: Histogram<"verb" | "resource">;
  // leader election
  readonly leaderStatus: Gauge<"name">;
  // informers
  readonly informerLists: Counter<"resource">;
  readonly informerWatchErrors: Counter<"resource">;
  readonly informerRelists: Counter<"resource">;
  // events
  readonly eventsDropped: Counter<"reason">;

  constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    const qLabels = ["name", "controller"] as const;
    this.workqueueDepth = new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: qLabels,
      registers,
    });
    this.workqueueAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: qLabels,
      registers,
    });
    this.workqueueRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: qLabels,
      registers,
    });
    this.workqueueQueueDuration = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: qLabels,
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.workqueueWorkDuration = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes",
      labelNames: qLabels,
      buckets: QUEUE_BUCKETS,
      registers,
    });
    const sources = this.queueSources;
    this.workqueueUnfinishedWork = new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
      labelNames: qLabels,
      registers,
      collect() {
        for (const [name, src] of sources) this.set({ name, controller: name }, src.unfinishedWorkSeconds());
      },
    });
    this.workqueueLongestRunning = new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running",
      labelNames: qLabels,
      registers,
      collect() {
        for (const [name, src] of sources) {
          this.set({ name, controller: name }, src.longestRunningProcessorSeconds());
        }
      },
    });
    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"],
      registers,
    });
    this.terminalReconcileErrors = new Counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Total number of terminal reconciliation errors per controller",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"],
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.activeWorkers = new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"],
      registers,
    });
    this.maxConcurrentReconciles = new Gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: ["controller"],
      registers,
    });
    this.restRequests = new Counter({
      name: "rest_client_requests_total",
      help: "Number of HTTP requests to the API server, partitioned by verb, resource and status code",
      labelNames: ["verb", "resource", "code"],
      registers,
    });
    this.restRequestDuration = new Histogram({
      name: "rest_client_request_duration_seconds",
      help: "Request latency in seconds, partitioned by verb and resource",
      labelNames: ["verb", "resource"],
      buckets: REST_BUCKETS,
      registers,
    });
    this.leaderStatus = new Gauge({
      name: "leader_election_master_status",
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
      labelNames: ["name"],
      registers,
    });
    this.informerLists = new Counter({
      name: "informer_lists_total",
      help: "Number of full lists made by informers",
      labelNames: ["resource"],
      registers,
    });
    this.informerRelists = new Counter({
      name: "informer_relists_total",
      help: "Number of relists after the watch expired (410 Gone)",
      labelNames: ["resource"],
      registers,
    });
    this.informerWatchErrors = new Counter({
      name: "informer_watch_errors_total",
      help: "Number of failed lists or watches of informers (retried with backoff)",
      labelNames: ["resource"],
      registers,
    });
    this.eventsDropped = new Counter({
      name: "events_dropped_total",
      help: "Number of Kubernetes events not written (queue full or API errors)",
      labelNames: ["reason"],
      registers,
    });
  }

  /** Registers a work queue whose in-flight gauges are computed at scrape time. */
  registerQueue(name: string, source: QueueGaugeSource): void {
    this.queueSources.set(name, source);
  }

  unregisterQueue(name: string, source: QueueGaugeSource): void {
    if (this.queueSources.get(name) === source) this.queueSources.delete(name);
  }
}

const cache = new WeakMap<Registry, RuntimeMetrics>();

/** The runtime's metrics on `registry` (created once per registry). */
export function runtimeMetrics(registry: Registry = defaultRegistry): RuntimeMetrics {
  let m = cache.get(registry);
  if (!m) {
    m = new RuntimeMetrics(registry);
    cache.set(registry, m);
  }
  return m;
}
