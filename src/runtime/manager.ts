// Wires the runtime together like controller-runtime's manager: one KubeClient, shared informers, the
// metrics and probe servers, leader election, controllers, and graceful shutdown.
import { setMaxListeners } from "node:events";
import { Controller, type ControllerOptions } from "./controller.ts";
import { EventRecorder, type EventRecorderOptions } from "./events.ts";
import { type HealthCheck, HealthChecks, HealthServer, parseBindAddress } from "./health-server.ts";
import { Informer, type InformerOptions } from "./informer.ts";
import type { ClusterAccess as KubeConfig } from "./kube/cluster-access.ts";
import { KubeClient, type KubeClientOptions, type KubeObject, type ResourceType } from "./kube.ts";
import { defaultIdentity, LeaderElector } from "./leader-election.ts";
import { discardLogger, type Logger } from "./logger.ts";
import { createRegistry, type Registry } from "./metrics.ts";
import { sleep } from "./util.ts";

/** Something the manager starts and stops. `start` should resolve once `signal` aborted and it stopped. */
export interface Runnable {
  name?: string;
  start(signal: AbortSignal): Promise<void> | void;
  /** Run only while this process leads (default true for controllers, false otherwise). */
  needLeaderElection?: boolean;
}

export interface ManagerLeaderElection {
  enabled: boolean;
  namespace: string;
  /** Lease name. */
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  releaseOnCancel?: boolean;
}

export interface ManagerOptions {
  /** Either a client or a KubeConfig to build one from. */
  client?: KubeClient;
  kubeConfig?: KubeConfig;
  clientOptions?: Omit<KubeClientOptions, "registry" | "logger">;
  logger?: Logger;
  registry?: Registry;
  /** Default ":8080"; "0" disables. */
  metricsBindAddress?: string;
  /** Default ":8081"; "0" disables. May equal the metrics address (one server). */
  healthProbeBindAddress?: string;
  leaderElection?: ManagerLeaderElection;
  /** Time allowed for runnables to stop after the signal (default 30 s). */
  gracefulShutdownTimeoutMs?: number;
  /** Informers must sync within this (default 2 min), else `start` fails. */
  cacheSyncTimeoutMs?: number;
  /** Defaults for `eventRecorder()`. */
  reportingController?: string;
}

export class LeaderElectionLostError extends Error {
  override readonly name = "LeaderElectionLostError";
}

interface Registered {
  runnable: Runnable;
  leader: boolean;
}

export class Manager {
  readonly client: KubeClient;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly checks = new HealthChecks();
  readonly identity: string;
  private readonly opts: ManagerOptions;
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly runnables: Registered[] = [];
  private readonly recorders: EventRecorder[] = [];
  private elector: LeaderElector | undefined;
  private informerSignal: AbortController | undefined;
  private leading = false;
  private electedWaiters: (() => void)[] = [];
  private started = false;
  private metricsPort: number | undefined;
  private healthPort: number | undefined;

  constructor(options: ManagerOptions) {
    this.opts = options;
    this.logger = options.logger ?? discardLogger();
    this.registry = options.registry ?? createRegistry({ defaultMetrics: true });
    this.identity = options.leaderElection?.identity ?? defaultIdentity();
    if (options.client) this.client = options.client;
    else if (options.kubeConfig) {
      this.client = new KubeClient(options.kubeConfig, {
        ...options.clientOptions,
        registry: this.registry,
        logger: this.logger.child("kube"),
      });
    } else throw new Error("Manager needs a client or a kubeConfig");
    this.checks.addReadyzCheck("informers", () => {
      const pending = [...this.informers.values()].filter((i) => !i.hasSynced()).map((i) => i.type.plural);
      return pending.length === 0 ? true : `not synced: ${pending.join(", ")}`;
    });
  }

  /** The shared informer for a type (and namespace/selectors). Started with the manager (or at once). */
  informer<T extends KubeObject>(type: ResourceType, options: InformerOptions<T> = {}): Informer<T> {
    const key = JSON.stringify([
      type.group,
      type.version,
      type.plural,
      options.namespace ?? "",
      options.labelSelector ?? "",
      options.fieldSelector ?? "",
    ]);
    let inf = this.informers.get(key);
    if (!inf) {
      const created = new Informer<T>(this.client, type, {
        logger: this.logger,
        registry: this.registry,
        ...options,
      });
      inf = created as unknown as Informer<KubeObject>;
      this.informers.set(key, inf);
      if (this.informerSignal) void inf.start(this.informerSignal.signal);
    }
    return inf as unknown as Informer<T>;
  }

  /** A controller registered with the manager (runs while leading). */
  controller(options: Omit<ControllerOptions, "registry"> & { registry?: Registry }): Controller {
    const c = new Controller({ logger: this.logger, registry: this.registry, ...options });
    this.add(c, true);
    return c;
  }

  /** Adds a runnable (a Controller needs leader election by default). */
  add(runnable: Runnable | Controller, needLeaderElection?: boolean): void {
    const leader =
      needLeaderElection ?? (runnable instanceof Controller || runnable.needLeaderElection === true);
    this.runnables.push({ runnable, leader });
  }

  eventRecorder(options: Partial<EventRecorderOptions> = {}): EventRecorder {
    const r = new EventRecorder(this.client, {
      reportingController: this.opts.reportingController ?? "kubipam",
      reportingInstance: this.identity.slice(0, 128),
      logger: this.logger,
      registry: this.registry,
      ...options,
    });
    this.recorders.push(r);
    return r;
  }

  addHealthzCheck(name: string, check: HealthCheck): void {
    this.checks.addHealthzCheck(name, check);
  }
  addReadyzCheck(name: string, check: HealthCheck): void {
    this.checks.addReadyzCheck(name, check);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The elector once leader election runs (undefined without it). */
  get leaderElector(): LeaderElector | undefined {
    return this.elector;
  }

  /** Resolves when this process leads (at once without leader election). */
  elected(): Promise<void> {
    if (this.leading) return Promise.resolve();
    return new Promise((resolve) => this.electedWaiters.push(resolve));
  }

  get ports(): { metrics: number | undefined; health: number | undefined } {
    return { metrics: this.metricsPort, health: this.healthPort };
  }

  /**
   * Runs everything until `signal` aborts, then shuts down gracefully. Rejects with
   * LeaderElectionLostError when leadership is lost (the process should exit), or when caches do not sync.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.started) throw new Error("manager already started");
    this.started = true;
    // Every controller, worker and informer listens for this one signal: that is by design.
    setMaxListeners(0, signal);
    const servers = await this.startServers();
    const informers = new AbortController();
    this.informerSignal = informers;
    const informerRuns = [...this.informers.values()].map((i) => i.start(informers.signal));
    const running: Promise<void>[] = [];
    let failure: Error | undefined;
    try {
      await this.waitForCaches(signal);
      if (!signal.aborted) {
        for (const r of this.runnables.filter((x) => !x.leader))
          running.push(this.runOne(r.runnable, signal));
        const leaderRunnables = this.runnables.filter((x) => x.leader).map((x) => x.runnable);
        const le = this.opts.leaderElection;
        if (le?.enabled) {
          const elector = new LeaderElector(this.client, {
            namespace: le.namespace,
            name: le.name,
            identity: this.identity,
            leaseDurationMs: le.leaseDurationMs,
            renewDeadlineMs: le.renewDeadlineMs,
            retryPeriodMs: le.retryPeriodMs,
            releaseOnCancel: le.releaseOnCancel,
            logger: this.logger,
            registry: this.registry,
            onStartedLeading: async (leadingSignal) => {
              this.setLeading(true);
              await Promise.all(leaderRunnables.map((r) => this.runOne(r, leadingSignal)));
            },
            onStoppedLeading: () => this.setLeading(false),
          });
          this.elector = elector;
          this.checks.addHealthzCheck("leader-election", () => elector.check());
          const outcome = await elector.run(signal);
          if (outcome === "lost") failure = new LeaderElectionLostError("leader election lost");
        } else {
          this.setLeading(true);
          running.push(...leaderRunnables.map((r) => this.runOne(r, signal)));
          // Run until stopped (or until every runnable has returned by itself); only then does
          // the graceful shutdown below start.
          const stopped = new Promise<void>((resolve) => {
            if (signal.aborted) resolve();
            else signal.addEventListener("abort", () => resolve(), { once: true });
          });
          await Promise.race([Promise.all(running), stopped]);
        }
      }
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    // Shutdown: runnables first (they were handed `signal`), then caches, events and servers.
    if (!signal.aborted && failure) this.logger.error("manager stopping", { error: failure });
    const graceful = this.opts.gracefulShutdownTimeoutMs ?? 30_000;
    const graceTimer = new AbortController();
    const done = await Promise.race([
      Promise.all(running).then(() => true),
      failure ? Promise.resolve(true) : sleep(graceful, graceTimer.signal).then((slept) => !slept),
    ]);
    graceTimer.abort();
    if (!done) this.logger.error("runnables did not stop within the graceful shutdown timeout", { graceful });
    informers.abort();
    await Promise.all(informerRuns);
    await Promise.all(this.recorders.map((r) => r.stop(2_000)));
    await Promise.all(servers.map((s) => s.stop()));
    this.setLeading(false);
    this.logger.info("manager stopped");
    if (failure) throw failure;
  }

  private setLeading(v: boolean): void {
    this.leading = v;
    if (v) {
      const ws = this.electedWaiters;
      this.electedWaiters = [];
      for (const w of ws) w();
    }
  }

  private async runOne(r: Runnable, signal: AbortSignal): Promise<void> {
    try {
      await r.start(signal);
    } catch (err) {
      this.logger.error("runnable failed", { runnable: r.name ?? r.constructor.name, error: err });
    }
  }

  private async waitForCaches(signal: AbortSignal): Promise<void> {
    const timeoutMs = this.opts.cacheSyncTimeoutMs ?? 120_000;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    const onAbort = () => ac.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const results = await Promise.all([...this.informers.values()].map((i) => i.waitForSync(ac.signal)));
      if (!signal.aborted && results.some((ok) => !ok)) {
        throw new Error(`informers did not sync within ${timeoutMs} ms`);
      }
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  private async startServers(): Promise<HealthServer[]> {
    const metricsAddr = this.opts.metricsBindAddress ?? ":8080";
    const healthAddr = this.opts.healthProbeBindAddress ?? ":8081";
    const servers: HealthServer[] = [];
    // The same fixed address means one server for both; two ephemeral ones (port 0) mean two servers.
    const shared = metricsAddr === healthAddr && parseBindAddress(metricsAddr)?.port !== 0;
    if (shared) {
      const s = new HealthServer({
        bindAddress: metricsAddr,
        registry: this.registry,
        checks: this.checks,
        logger: this.logger,
      });
      const port = await s.start();
      this.metricsPort = port;
      this.healthPort = port;
      servers.push(s);
    } else {
      const m = new HealthServer({ bindAddress: metricsAddr, registry: this.registry, logger: this.logger });
      this.metricsPort = await m.start();
      servers.push(m);
      const h = new HealthServer({ bindAddress: healthAddr, checks: this.checks, logger: this.logger });
      try {
        this.healthPort = await h.start();
      } catch (err) {
        await m.stop();
        throw err;
      }
      servers.push(h);
    }
    return servers;
  }
}

/**
 * An AbortSignal that aborts on the first SIGTERM or SIGINT; a second signal exits at once (code 1).
 */
export function signalHandler(logger: Logger = discardLogger()): AbortSignal {
  const ac = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) {
      logger.warn("second signal; exiting now", { signal: sig });
      process.exit(1);
    }
    logger.info("shutting down", { signal: sig });
    ac.abort(new Error(`received ${sig}`));
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
  return ac.signal;
}
