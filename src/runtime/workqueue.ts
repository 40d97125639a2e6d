// A work queue with client-go semantics: duplicate keys collapse, a key being processed is never handed
// out again until `done`, delayed adds, per-key rate-limited retries, and shutdown with drain.
import { type Registry, type RuntimeMetrics, runtimeMetrics } from "./metrics.ts";

// ---------------------------------------------------------------------------------------------------------
// Rate limiters

export interface RateLimiter {
  /** How long to wait before the key may be processed again (and records a failure). */
  when(key: string): number;
  /** Stops tracking the key (its next failure starts from the base delay). */
  forget(key: string): void;
  /** How many failures the key has had. */
  numRequeues(key: string): number;
}

/** `baseDelayMs * 2^failures`, capped at `maxDelayMs` (client-go: 5 ms .. 1000 s). */
export class ExponentialFailureRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();
  constructor(
    readonly baseDelayMs = 5,
    readonly maxDelayMs = 1_000_000,
  ) {}

  when(key: string): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    const delay = this.baseDelayMs * 2 ** exp;
    return Number.isFinite(delay) ? Math.min(delay, this.maxDelayMs) : this.maxDelayMs;
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** An overall token bucket (client-go: 10 qps, burst 100): limits the retry rate of all keys together. */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;
  constructor(
    readonly qps = 10,
    readonly burst = 100,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  when(_key: string): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    return (-this.tokens / this.qps) * 1000;
  }
  forget(_key: string): void {}
  numRequeues(_key: string): number {
    return 0;
  }
}

/** The longest delay of several limiters. */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];
  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }
  when(key: string): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.when(key));
    return max;
  }
  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }
  numRequeues(key: string): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.numRequeues(key));
    return max;
  }
}

/** client-go's default controller rate limiter: per-key 5 ms .. 1000 s, overall 10 qps / burst 100. */
export function defaultControllerRateLimiter(): RateLimiter {
  return new MaxOfRateLimiter(
    new ExponentialFailureRateLimiter(5, 1_000_000),
    new BucketRateLimiter(10, 100),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Queue

/** FIFO with O(1) amortised push/shift. */
class Fifo {
  private items: string[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(v: string): void {
    this.items.push(v);
  }
  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}

export interface WorkQueueOptions {
  /** Name for metrics (`name` and `controller` labels); no metrics without a name. */
  name?: string;
  rateLimiter?: RateLimiter;
  registry?: Registry;
}

interface Waiter {
  resolve: (key: string | undefined) => void;
}

export class WorkQueue {
  readonly name: string | undefined;
  readonly rateLimiter: RateLimiter;
  private readonly queue = new Fifo();
  /** Keys that need processing (queued, or re-added while processing). */
  private readonly dirty = new Set<string>();
  /** Keys handed out and not yet `done`, with the time they were handed out. */
  private readonly processing = new Map<string, number>();
  /** When each dirty key was first added (for the queue latency metric). */
  private readonly addedAt = new Map<string, number>();
  private readonly waiting = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private waiters: Waiter[] = [];
  private drainWaiters: (() => void)[] = [];
  private shutting = false;
  private readonly metrics: RuntimeMetrics | undefined;
  private readonly labels: { name: string; controller: string } | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name;
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter();
    if (options.name !== undefined) {
      this.metrics = runtimeMetrics(options.registry);
      this.labels = { name: options.name, controller: options.name };
      this.metrics.registerQueue(options.name, this);
      this.metrics.workqueueDepth.set(this.labels, 0);
    }
  }

  /** Adds a key; a no-op if it is already waiting to be processed or the queue is shutting down. */
  add(key: string): void {
    if (this.shutting) return;
    if (this.metrics && this.labels) this.metrics.workqueueAdds.inc(this.labels);
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return; // handed out again after done()
    this.queue.push(key);
    this.updateDepth();
    this.dispatch();
  }

  /** Adds the key after `delayMs`. An earlier pending delayed add of the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shutting) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const at = performance.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing) {
      if (existing.at <= at) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { at, timer });
  }

  /** Adds the key after the rate limiter's delay for it (a retry). */
  addRateLimited(key: string): void {
    if (this.shutting) return;
    if (this.metrics && this.labels) this.metrics.workqueueRetries.inc(this.labels);
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Ends retry tracking for the key (call after a success). */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next key to process; waits for one. Undefined once the queue is shut down and empty, or when
   * `signal` aborts. Every key returned must be passed to `done`.
   */
  get(signal?: AbortSignal): Promise<string | undefined> {
    if (this.queue.length > 0) return Promise.resolve(this.take());
    if (this.shutting || signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve: (k) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(k);
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(undefined);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Marks the key as processed; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    if (this.metrics && this.labels) {
      this.metrics.workqueueWorkDuration.observe(this.labels, (performance.now() - started) / 1000);
    }
    if (this.dirty.has(key)) {
      this.queue.push(key);
      this.updateDepth();
      this.dispatch();
    }
    if (this.processing.size === 0 && this.drainWaiters.length > 0) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of ws) w();
    }
  }

  /** Keys waiting to be handed out. */
  len(): number {
    return this.queue.length;
  }

  /** Keys handed out and not yet done. */
  processingCount(): number {
    return this.processing.size;
  }

  /** Keys waiting for a delayed add. */
  waitingCount(): number {
    return this.waiting.size;
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  get shuttingDown(): boolean {
    return this.shutting;
  }

  /** Ignores further adds; `get` hands out what is queued, then answers undefined. */
  shutDown(): void {
    if (this.shutting) return;
    this.shutting = true;
    for (const w of this.waiting.values()) clearTimeout(w.timer);
    this.waiting.clear();
    this.dispatch();
    if (this.metrics && this.name !== undefined) this.metrics.unregisterQueue(this.name, this);
  }

  /** Shuts down, then waits until every key handed out is `done` (at most `timeoutMs`, if given). */
  shutDownWithDrain(timeoutMs?: number): Promise<boolean> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const w = () => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      this.drainWaiters.push(w);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.drainWaiters = this.drainWaiters.filter((x) => x !== w);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  // QueueGaugeSource
  unfinishedWorkSeconds(): number {
    const now = performance.now();
    let total = 0;
    for (const t of this.processing.values()) total += now - t;
    return total / 1000;
  }
  longestRunningProcessorSeconds(): number {
    const now = performance.now();
    let max = 0;
    for (const t of this.processing.values()) max = Math.max(max, now - t);
    return max / 1000;
  }

  private take(): string | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    const now = performance.now();
    this.processing.set(key, now);
    this.dirty.delete(key);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (this.metrics && this.labels) {
      if (added !== undefined) this.metrics.workqueueQueueDuration.observe(this.labels, (now - added) / 1000);
    }
    this.updateDepth();
    return key;
  }

  private dispatch(): void {
    while (this.waiters.length > 0 && this.queue.length > 0) {
      const w = this.waiters.shift();
      w?.resolve(this.take());
    }
    if (this.shutting && this.queue.length === 0) {
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w.resolve(undefined);
    }
  }

  private updateDepth(): void {
    if (this.metrics && this.labels) this.metrics.workqueueDepth.set(this.labels, this.queue.length);
  }
}
