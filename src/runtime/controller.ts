// A controller: a named work queue drained by N workers that call `reconcile(key)`; failures are retried
// with per-key backoff, results can ask for a delayed requeue. Metrics as in controller-runtime.
import type { Informer } from "./informer.ts";
import { type KubeObject, objectKey } from "./kube.ts";
import { discardLogger, type Logger } from "./logger.ts";
import { type Registry, type RuntimeMetrics, runtimeMetrics } from "./metrics.ts";
import { type RateLimiter, WorkQueue } from "./workqueue.ts";

export interface ReconcileResult {
  /** Process the key again after this many ms (the backoff is reset). */
  requeueAfter?: number;
  /** Process the key again with the rate limiter's backoff. */
  requeue?: boolean;
}

// biome-ignore lint/suspicious/noConfusingVoidType: an async reconciler may simply not return anything
export type Reconciler = (key: string, signal: AbortSignal) => Promise<ReconcileResult | undefined | void>;

/** Thrown by a reconciler: logged and counted, but not retried (until the key is added again). */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
}

export interface ControllerOptions {
  name: string;
  reconcile: Reconciler;
  /** Concurrent reconciles (default 1). One key is never reconciled twice at once. */
  workers?: number;
  rateLimiter?: RateLimiter;
  logger?: Logger;
  registry?: Registry;
  /** How long `start`'s graceful stop waits for in-flight reconciles (default 30 s). */
  shutdownTimeoutMs?: number;
  /**
   * Abort the signal handed to a reconcile after this long (default: no limit). The key stays "in
   * processing" until the reconcile returns, so it is never run twice at once.
   */
  reconcileTimeoutMs?: number;
  /** Log successful reconciles at debug level (default true). */
  logSuccess?: boolean;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly workers: number;
  private readonly reconciler: Reconciler;
  private readonly logger: Logger;
  private readonly metrics: RuntimeMetrics;
  private readonly shutdownTimeoutMs: number;
  private readonly reconcileTimeoutMs: number | undefined;
  private readonly logSuccess: boolean;
  private started = false;
  private running: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.reconciler = options.reconcile;
    this.workers = Math.max(1, options.workers ?? 1);
    this.logger = (options.logger ?? discardLogger()).child("controller", { controller: options.name });
    this.metrics = runtimeMetrics(options.registry);
    this.queue = new WorkQueue({
      name: options.name,
      rateLimiter: options.rateLimiter,
      registry: options.registry,
    });
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 30_000;
    this.reconcileTimeoutMs = options.reconcileTimeoutMs;
    this.logSuccess = options.logSuccess ?? true;
    this.metrics.activeWorkers.set({ controller: this.name }, 0);
    this.metrics.maxConcurrentReconciles.set({ controller: this.name }, this.workers);
    for (const result of ["success", "error", "requeue", "requeue_after"]) {
      this.metrics.reconcileTotal.inc({ controller: this.name, result }, 0);
    }
    this.metrics.reconcileErrors.inc({ controller: this.name }, 0);
  }

  /** Queues a key (`namespace/name` or `name`). Keys may be queued before `start`. */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  enqueueAfter(key: string, delayMs: number): void {
    this.queue.addAfter(key, delayMs);
  }

  /**
   * Enqueues keys for changes seen by `informer`: the object's own key by default, or the keys `map`
   * returns (e.g. an owner's key). `updateFilter` can skip uninteresting updates (e.g. status-only).
   * Returns a function that removes the handlers.
   */
  watch<T extends KubeObject>(
    informer: Informer<T>,
    map: (obj: T) => string | readonly string[] | undefined = objectKey,
    options: { updateFilter?: (oldObj: T, newObj: T) => boolean } = {},
  ): () => void {
    const enqueue = (obj: T) => {
      const keys = map(obj);
      if (keys === undefined) return;
      if (typeof keys === "string") this.queue.add(keys);
      else for (const k of keys) this.queue.add(k);
    };
    return informer.addEventHandler({
      onAdd: (obj) => enqueue(obj),
      onUpdate: (oldObj, newObj) => {
        if (options.updateFilter && !options.updateFilter(oldObj, newObj)) return;
        enqueue(oldObj);
        enqueue(newObj);
      },
      onDelete: (obj) => enqueue(obj),
    });
  }

  /**
   * Runs the workers until `signal` aborts. The same signal is handed to every reconcile. On abort the
   * queue shuts down and `start` resolves once in-flight reconciles return (or the shutdown timeout
   * passes, which is logged).
   */
  start(signal: AbortSignal): Promise<void> {
    if (this.started) throw new Error(`controller ${this.name} already started`);
    this.started = true;
    this.running = this.run(signal);
    return this.running;
  }

  private async run(signal: AbortSignal): Promise<void> {
    this.logger.info("starting workers", { workers: this.workers });
    const onAbort = () => this.queue.shutDown();
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    const workers: Promise<void>[] = [];
    for (let i = 0; i < this.workers; i++) workers.push(this.worker(signal));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((resolve) => {
      const arm = () => {
        timer = setTimeout(() => resolve("timeout"), this.shutdownTimeoutMs);
      };
      if (signal.aborted) arm();
      else signal.addEventListener("abort", arm, { once: true });
    });
    const outcome = await Promise.race([Promise.all(workers).then(() => "done" as const), deadline]);
    if (timer) clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
    if (outcome === "timeout") {
      this.logger.error("reconciles still running after the shutdown timeout; giving up on them", {
        inFlight: this.inFlight.size,
        timeoutMs: this.shutdownTimeoutMs,
      });
    } else {
      this.logger.info("all workers stopped");
    }
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) return;
      const key = await this.queue.get(signal);
      if (key === undefined) return;
      if (signal.aborted) {
        this.queue.done(key);
        return;
      }
      const p = this.processKey(key, signal);
      this.inFlight.add(p);
      try {
        await p;
      } finally {
        this.inFlight.delete(p);
      }
    }
  }

  private async reconcileWithTimeout(key: string, signal: AbortSignal): ReturnType<Reconciler> {
    const limit = this.reconcileTimeoutMs;
    if (limit === undefined || limit <= 0) return this.reconciler(key, signal);
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => ac.abort(new Error(`reconcile of ${key} exceeded ${limit} ms`)), limit);
    try {
      return await this.reconciler(key, ac.signal);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  private async processKey(key: string, signal: AbortSignal): Promise<void> {
    const labels = { controller: this.name };
    const started = performance.now();
    this.metrics.activeWorkers.inc(labels);
    try {
      let result: ReconcileResult | undefined;
      try {
        const r = await this.reconcileWithTimeout(key, signal);
        result = r ? r : undefined;
      } catch (err) {
        this.metrics.reconcileErrors.inc(labels);
        this.metrics.reconcileTotal.inc({ ...labels, result: "error" });
        if (err instanceof TerminalError) {
          this.metrics.terminalReconcileErrors.inc(labels);
          this.queue.forget(key);
          this.logger.error("reconcile failed (terminal, not retried)", { key, error: err });
        } else if (signal.aborted) {
          this.logger.info("reconcile interrupted by shutdown", { key, error: err });
        } else {
          this.queue.addRateLimited(key);
          this.logger.error("reconcile failed; will retry", {
            key,
            error: err,
            retries: this.queue.numRequeues(key),
          });
        }
        return;
      }
      if (result?.requeueAfter !== undefined && result.requeueAfter > 0) {
        this.queue.forget(key);
        this.queue.addAfter(key, result.requeueAfter);
        this.metrics.reconcileTotal.inc({ ...labels, result: "requeue_after" });
      } else if (result?.requeue) {
        this.queue.addRateLimited(key);
        this.metrics.reconcileTotal.inc({ ...labels, result: "requeue" });
      } else {
        this.queue.forget(key);
        this.metrics.reconcileTotal.inc({ ...labels, result: "success" });
      }
      if (this.logSuccess && this.logger.enabled("debug")) {
        this.logger.debug("reconciled", { key, ms: Math.round(performance.now() - started) });
      }
    } finally {
      this.metrics.reconcileTime.observe(labels, (performance.now() - started) / 1000);
      this.metrics.activeWorkers.dec(labels);
      this.queue.done(key);
    }
  }
}

/** Update filter: spec changes (generation), deletion starting, or finalizer/label/annotation changes. */
export function generationOrMetadataChanged(oldObj: KubeObject, newObj: KubeObject): boolean {
  const a = oldObj.metadata;
  const b = newObj.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.finalizers ?? []) !== JSON.stringify(b.finalizers ?? []) ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {})
  );
}
