// Leader election on a coordination.k8s.io/v1 Lease, after client-go's LeaderElector: expiry is judged by
// locally observed changes of the lease record (never by comparing clocks), writes use optimistic
// concurrency, and the leading signal aborts the moment the lease is lost.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  CoreTypes,
  isAlreadyExists,
  isConflict,
  isNotFound,
  type KubeClient,
  type KubeObject,
  type ResourceType,
} from "./kube.ts";
import { discardLogger, type Logger } from "./logger.ts";
import { type Registry, type RuntimeMetrics, runtimeMetrics } from "./metrics.ts";
import { formatMicroTime, sleep } from "./util.ts";

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  /** Lease namespace and name. */
  namespace: string;
  name: string;
  /** Unique per process (default: hostname + random suffix). */
  identity?: string;
  /** Default 15 s. Non-leaders wait this long after the last observed change before taking over. */
  leaseDurationMs?: number;
  /** Default 10 s. A leader that cannot renew for this long steps down. Must be < leaseDurationMs. */
  renewDeadlineMs?: number;
  /** Default 2 s. Interval between acquire/renew attempts. */
  retryPeriodMs?: number;
  /** Release the lease when stopped (default true): holder empty, leaseDurationSeconds 1. */
  releaseOnCancel?: boolean;
  /**
   * Runs while leading. `signal` aborts when leadership ends (lost, or `run`'s signal aborted). On a
   * graceful stop the lease is kept (renewed) until this returns, then released.
   */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once after leading ended; `lost` is false for a requested stop. */
  onStoppedLeading?: (info: { lost: boolean; reason: string }) => void;
  /** Called when a new holder is observed (including this process). */
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
  registry?: Registry;
  /** The Lease resource (default coordination.k8s.io/v1 leases). */
  leaseType?: ResourceType;
}

export type ElectionOutcome = "lost" | "stopped";

type Attempt = "acquired" | "held" | "failed";

export function defaultIdentity(): string {
  return `${hostname()}_${randomUUID()}`;
}

export class LeaderElector {
  readonly identity: string;
  private readonly client: KubeClient;
  private readonly opts: LeaderElectionOptions;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger;
  private readonly metrics: RuntimeMetrics;
  private readonly leaseType: ResourceType;
  private observedRaw = "";
  private observedHolder = "";
  private observedAt = 0;
  private lease: Lease | undefined;
  private leading = false;
  private lastRenew = 0;
  private started = false;
  /** Every lease write of a leader goes through this chain, so confirm() and renewals never race. */
  private writes: Promise<unknown> = Promise.resolve();
  private confirmWaiters: ((held: boolean) => void)[] = [];
  private confirming = false;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.client = client;
    this.opts = options;
    this.identity = options.identity ?? defaultIdentity();
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs) {
      throw new Error("leader election: leaseDuration must be greater than renewDeadline");
    }
    if (this.renewDeadlineMs <= this.retryPeriodMs * 1.2) {
      throw new Error("leader election: renewDeadline must be greater than retryPeriod*1.2");
    }
    if (this.leaseDurationMs < 1000) throw new Error("leader election: leaseDuration must be at least 1 s");
    this.logger = (options.logger ?? discardLogger()).child("leader-election", {
      lease: `${options.namespace}/${options.name}`,
      identity: this.identity,
    });
    this.metrics = runtimeMetrics(options.registry);
    this.leaseType = options.leaseType ?? CoreTypes.lease;
    this.metrics.leaderStatus.set({ name: options.name }, 0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The last observed holder ("" if none). */
  getLeader(): string {
    return this.observedHolder;
  }

  /**
   * A health check (client-go's HealthzAdaptor): fails when this process believes it leads but has not
   * renewed for longer than the lease duration plus `toleranceMs`.
   */
  check(toleranceMs = 20_000): boolean {
    if (!this.leading) return true;
    return performance.now() - this.lastRenew <= this.leaseDurationMs + toleranceMs;
  }

  /**
   * Proves with a compare-and-swap write (a renewal guarded by the lease's resourceVersion) that this
   * process still holds the lease. Resolves true once a renewal that started after this call succeeded;
   * false when not leading, when the lease was taken over, or when the write failed. Concurrent calls
   * share one write, so a batch of callers costs one request. A fencing token: whatever a caller wrote
   * before calling happened before that renewal, so a later holder (who first overwrote the lease)
   * sees it.
   */
  confirm(): Promise<boolean> {
    if (!this.leading) return Promise.resolve(false);
    const held = new Promise<boolean>((resolve) => this.confirmWaiters.push(resolve));
    this.drainConfirms();
    return held;
  }

  private drainConfirms(): void {
    if (this.confirming || this.confirmWaiters.length === 0) return;
    this.confirming = true;
    // Taken before the write is queued: that write starts after every one of these calls.
    const waiters = this.confirmWaiters.splice(0);
    void this.serialized(() => this.renewHeld())
      .catch(() => false)
      .then((held) => {
        for (const w of waiters) w(held);
        this.confirming = false;
        this.drainConfirms();
      });
  }

  private serialized<T>(write: () => Promise<T>): Promise<T> {
    const next = this.writes.then(write, write);
    this.writes = next.catch(() => undefined);
    return next;
  }

  /** A renewal from the lease as this process last wrote it; never takes a lease over. */
  private async renewHeld(): Promise<boolean> {
    const lease = this.lease;
    if (!this.leading || !lease || lease.spec?.holderIdentity !== this.identity) return false;
    try {
      const renewed = await this.client.update<Lease>(
        this.leaseType,
        {
          ...lease,
          metadata: { ...lease.metadata, managedFields: undefined },
          spec: { ...lease.spec, renewTime: formatMicroTime(new Date()) },
        },
        { timeoutMs: this.renewDeadlineMs },
      );
      this.observe(renewed);
      this.lastRenew = performance.now();
      return this.leading;
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    // Someone else wrote the lease (a periodic renewal of ours is serialized with this one): start
    // from a fresh read; a lease held by another means it was taken over.
    const r = await this.tryAcquireOrRenew(this.renewDeadlineMs);
    if (r === "acquired") this.lastRenew = performance.now();
    return r === "acquired" && this.leading;
  }

  /**
   * Campaigns until leading, leads until the lease is lost or `signal` aborts, then returns. Not reusable:
   * create a new elector to campaign again.
   */
  async run(signal: AbortSignal): Promise<ElectionOutcome> {
    if (this.started) throw new Error("LeaderElector.run may be called once");
    this.started = true;
    this.logger.info("attempting to acquire leader lease");
    let acquired = false;
    while (!signal.aborted) {
      const r = await this.tryAcquireOrRenew(this.retryPeriodMs * 5);
      if (r === "acquired") {
        acquired = true;
        break;
      }
      await sleep(this.retryPeriodMs * (1 + Math.random() * 1.2), signal);
    }
    if (signal.aborted) {
      if (acquired && (this.opts.releaseOnCancel ?? true)) await this.release();
      this.logger.info("stopped before leading");
      return "stopped";
    }
    return this.lead(signal);
  }

  private async lead(signal: AbortSignal): Promise<ElectionOutcome> {
    this.leading = true;
    this.lastRenew = performance.now();
    this.metrics.leaderStatus.set({ name: this.opts.name }, 1);
    this.logger.info("successfully acquired lease; started leading");
    const leading = new AbortController();
    let lostReason: string | undefined;
    let wake: (() => void) | undefined;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const lose = (reason: string) => {
      if (lostReason !== undefined || !this.leading) return;
      lostReason = reason;
      this.leading = false;
      this.metrics.leaderStatus.set({ name: this.opts.name }, 0);
      leading.abort(new Error(`leader election lost: ${reason}`));
      this.logger.error("leader lease lost; stopped leading", { reason });
      poke();
    };
    let deadline: NodeJS.Timeout | undefined;
    const armDeadline = () => {
      if (deadline) clearTimeout(deadline);
      const remaining = this.lastRenew + this.renewDeadlineMs - performance.now();
      deadline = setTimeout(
        () => lose(`failed to renew the lease within ${this.renewDeadlineMs} ms`),
        Math.max(0, remaining),
      );
    };
    armDeadline();

    let stopRequested = false;
    let workDone = false;
    const onStop = () => {
      stopRequested = true;
      leading.abort(new Error("leader election stopped"));
      poke();
    };
    if (signal.aborted) onStop();
    else signal.addEventListener("abort", onStop, { once: true });

    const work = (async () => {
      try {
        await this.opts.onStartedLeading(leading.signal);
      } catch (err) {
        this.logger.error("onStartedLeading failed", { error: err });
      }
    })().finally(() => {
      workDone = true;
      poke();
    });

    while (lostReason === undefined && !(stopRequested && workDone)) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          wake = undefined;
          resolve();
        }, this.retryPeriodMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (lostReason !== undefined || (stopRequested && workDone)) break;
      const remaining = this.lastRenew + this.renewDeadlineMs - performance.now();
      const r = await this.serialized(() => this.tryAcquireOrRenew(Math.max(250, remaining)));
      if (lostReason !== undefined) break;
      if (r === "acquired") {
        this.lastRenew = performance.now();
        armDeadline();
      } else if (r === "held") {
        lose(`lease is held by ${this.observedHolder}`);
      }
      // "failed": keep trying until the renew deadline passes.
    }
    if (deadline) clearTimeout(deadline);
    signal.removeEventListener("abort", onStop);

    if (lostReason !== undefined) {
      this.safeStopped({ lost: true, reason: lostReason });
      return "lost";
    }
    // Graceful stop: the leading work has returned; give the lease up so another candidate starts now.
    this.leading = false;
    this.metrics.leaderStatus.set({ name: this.opts.name }, 0);
    if (this.opts.releaseOnCancel ?? true) await this.release();
    await work;
    this.safeStopped({ lost: false, reason: "stopped" });
    return "stopped";
  }

  private safeStopped(info: { lost: boolean; reason: string }): void {
    try {
      this.opts.onStoppedLeading?.(info);
    } catch (err) {
      this.logger.error("onStoppedLeading failed", { error: err });
    }
  }

  private leaseSeconds(): number {
    return Math.max(1, Math.round(this.leaseDurationMs / 1000));
  }

  private observe(lease: Lease): void {
    const spec = lease.spec ?? {};
    const raw = JSON.stringify(spec);
    if (raw !== this.observedRaw) {
      this.observedRaw = raw;
      this.observedAt = performance.now();
      const holder = spec.holderIdentity ?? "";
      if (holder !== this.observedHolder) {
        this.observedHolder = holder;
        if (holder !== "") {
          this.logger.info("new leader observed", { leader: holder });
          try {
            this.opts.onNewLeader?.(holder);
          } catch (err) {
            this.logger.error("onNewLeader failed", { error: err });
          }
        }
      }
    }
    this.lease = lease;
  }

  private async tryAcquireOrRenew(timeoutMs: number): Promise<Attempt> {
    const { namespace, name } = this.opts;
    const now = new Date();
    let current: Lease;
    try {
      current = await this.client.get<Lease>(this.leaseType, name, { namespace, timeoutMs });
    } catch (err) {
      if (!isNotFound(err)) {
        this.logger.warn("error retrieving lease", { error: err });
        return "failed";
      }
      try {
        const created = await this.client.create<Lease>(
          this.leaseType,
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: {
              holderIdentity: this.identity,
              leaseDurationSeconds: this.leaseSeconds(),
              acquireTime: formatMicroTime(now),
              renewTime: formatMicroTime(now),
              leaseTransitions: 0,
            },
          },
          { timeoutMs },
        );
        this.observe(created);
        return "acquired";
      } catch (cerr) {
        if (!isAlreadyExists(cerr)) this.logger.warn("error creating lease", { error: cerr });
        return "failed";
      }
    }
    this.observe(current);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseSeconds()) * 1000;
    if (holder !== "" && holder !== this.identity && this.observedAt + durationMs > performance.now()) {
      return "held";
    }
    const mine = holder === this.identity;
    // A leader that finds another holder lost the lease meanwhile (even if that one expired since):
    // it must not quietly take it back, or confirm() would fence nothing.
    if (this.leading && !mine) return "held";
    const next: Lease = {
      ...current,
      metadata: { ...current.metadata, managedFields: undefined },
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: this.leaseSeconds(),
        renewTime: formatMicroTime(now),
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : formatMicroTime(now),
        leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      const updated = await this.client.update<Lease>(this.leaseType, next, { timeoutMs });
      this.observe(updated);
      return "acquired";
    } catch (err) {
      if (isConflict(err)) this.logger.debug("lease changed meanwhile (conflict)");
      else this.logger.warn("error updating lease", { error: err });
      return "failed";
    }
  }

  private async release(): Promise<void> {
    const lease = this.lease;
    if (!lease || (lease.spec?.holderIdentity ?? "") !== this.identity) return;
    const now = formatMicroTime();
    try {
      const released = await this.client.update<Lease>(
        this.leaseType,
        {
          ...lease,
          metadata: { ...lease.metadata, managedFields: undefined },
          spec: {
            holderIdentity: "",
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: lease.spec?.leaseTransitions ?? 0,
          },
        },
        { timeoutMs: this.renewDeadlineMs },
      );
      this.observe(released);
      this.logger.info("released leader lease");
    } catch (err) {
      this.logger.warn("failed to release the lease", { error: err });
    }
  }
}
