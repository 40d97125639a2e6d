// An informer for a resource that may not exist yet: a custom resource whose CRD someone else installs,
// perhaps after this process started. It asks discovery (`/apis/<group>/<version>`) every
// `pollIntervalMs` whether the resource is served; once it is, it starts a regular Informer, and calls
// `onServed` once that informer has synced. Until then it reads as an empty cache, so the rest of a
// controller runs normally without the resource. Handlers and indexes added at any time apply. If the
// resource goes again (its CRD deleted), its objects are reported deleted and it waits once more. A
// resource that is served but may not be listed (403: RBAC of an older install) settles as `forbidden`
// (one error logged naming the missing permission) and its informer keeps retrying until it may.

import { type EventHandlers, type IndexFunc, Informer, type InformerOptions } from "./informer.ts";
import { isForbidden, type KubeClient, type KubeObject, type ResourceType } from "./kube.ts";
import { discardLogger, type Logger } from "./logger.ts";
import { anySignal, sleep } from "./util.ts";

export interface DeferredInformerOptions<T> extends InformerOptions<T> {
  /** How often discovery is asked while the resource is not served (default 2000 ms). */
  pollIntervalMs?: number;
}

interface APIResourceList {
  resources?: { name?: string }[];
}

/** Whether discovery lists the resource type (its group/version served and the plural in it). */
export async function isServed(
  client: KubeClient,
  type: ResourceType,
  signal?: AbortSignal,
): Promise<boolean> {
  const path = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  const res = await client.raw("GET", path, signal ? { signal } : {});
  if (res.status === 404) return false;
  if (res.status < 200 || res.status >= 300) throw new Error(`discovery ${path}: HTTP ${res.status}`);
  const list = res.body as APIResourceList | undefined;
  return (list?.resources ?? []).some((r) => r.name === type.plural);
}

/**
 * `looking`: discovery not answered yet; `absent`: the resource was not served at the last look;
 * `starting`: served, its informer not synced yet; `forbidden`: served, but listing it is forbidden
 * (retried until allowed); `synced`: a complete cache.
 */
export type DeferredState = "looking" | "absent" | "starting" | "forbidden" | "synced";

export class DeferredInformer<T extends KubeObject = KubeObject> {
  readonly name: string;
  private current: Informer<T> | undefined;
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly indexes: [string, IndexFunc<T>][] = [];
  private readonly servedCallbacks: ((informer: Informer<T>) => void)[] = [];
  private readonly logger: Logger;
  private phase: DeferredState = "looking";
  private settledOnce = false;
  private settledWaiters: (() => void)[] = [];

  constructor(
    private readonly client: KubeClient,
    readonly type: ResourceType,
    private readonly options: DeferredInformerOptions<T> = {},
  ) {
    this.name = `deferred-informer:${this.resourceName}`;
    this.logger = (options.logger ?? discardLogger()).child("deferred-informer", {
      resource: this.resourceName,
    });
  }

  /** `plural.group` (or `plural` for the core group), as RBAC rules name it. */
  get resourceName(): string {
    return this.type.group ? `${this.type.plural}.${this.type.group}` : this.type.plural;
  }

  /** The informer once the resource is served (undefined before). */
  get informer(): Informer<T> | undefined {
    return this.current;
  }

  addEventHandler(handlers: EventHandlers<T>): void {
    this.handlers.push(handlers);
    this.current?.addEventHandler(handlers);
  }

  addIndex(name: string, fn: IndexFunc<T>): void {
    this.indexes.push([name, fn]);
    this.current?.addIndex(name, fn);
  }

  /** Called once the informer has synced (at once if it has already). */
  onServed(callback: (informer: Informer<T>) => void): void {
    this.servedCallbacks.push(callback);
    if (this.current?.hasSynced()) callback(this.current);
  }

  /**
   * Resolves once the first look is done: discovery said the resource is not served (or could not be
   * asked), or it is served and its informer has synced or was refused its list (403), or `signal`
   * aborted. What a start-up waits
   * for before it trusts the cache; a discovery failure never holds it up.
   */
  settled(signal?: AbortSignal): Promise<void> {
    if (this.settledOnce || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener("abort", done);
        resolve();
      };
      signal?.addEventListener("abort", done, { once: true });
      this.settledWaiters.push(done);
    });
  }

  private settle(): void {
    this.settledOnce = true;
    for (const w of this.settledWaiters.splice(0)) w();
  }

  get state(): DeferredState {
    return this.phase;
  }

  hasSynced(): boolean {
    return this.current?.hasSynced() ?? false;
  }

  get(key: string): T | undefined {
    return this.current?.get(key);
  }

  list(): T[] {
    return this.current?.list() ?? [];
  }

  byIndex(name: string, value: string): T[] {
    return this.current?.hasSynced() ? this.current.byIndex(name, value) : [];
  }

  /**
   * Until `signal` aborts: waits for the resource to be served, runs its informer, and — should the
   * resource stop being served (its CRD deleted) — reports every cached object deleted and waits again.
   */
  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!(await this.untilServed(signal))) break;
      await this.whileServed(signal);
    }
    this.settle();
  }

  private get interval(): number {
    return this.options.pollIntervalMs ?? 2000;
  }

  /** Asks discovery until the resource is served (true) or `signal` aborts (false). */
  private async untilServed(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      let served = false;
      let answered = true;
      try {
        served = await isServed(this.client, this.type, signal);
      } catch (err) {
        if (signal.aborted) return false;
        answered = false;
        this.logger.warn("discovery failed; asking again", { error: err });
      }
      if (answered && !served) this.phase = "absent";
      if (served) return true;
      // A failed look settles too: whoever waits for the first look must not wait on discovery.
      this.settle();
      await sleep(this.interval, signal);
    }
    return false;
  }

  /** Runs an informer while discovery keeps serving the resource (looked at every 5 intervals). */
  private async whileServed(signal: AbortSignal): Promise<void> {
    this.logger.info("resource is served; starting its informer");
    this.phase = "starting";
    let reported = false;
    const informer = new Informer<T>(this.client, this.type, {
      ...this.options,
      onListError: (err) => {
        this.options.onListError?.(err);
        if (!isForbidden(err) || informer.hasSynced()) return;
        this.phase = "forbidden";
        if (!reported) {
          reported = true;
          this.logger.error(`forbidden to list ${this.resourceName}: grant list and watch on it (RBAC)`, {
            error: err,
          });
        }
        // Start-up must not wait for permission: the cache reads as empty until the list succeeds.
        this.settle();
      },
    });
    for (const [name, fn] of this.indexes) informer.addIndex(name, fn);
    for (const h of this.handlers) informer.addEventHandler(h);
    this.current = informer;
    const stop = new AbortController();
    const running = informer.start(anySignal(signal, stop.signal));
    if (await informer.waitForSync(signal)) {
      if (reported) this.logger.info("listing is allowed now; the cache is complete");
      this.phase = "synced";
      this.settle();
      for (const callback of this.servedCallbacks) callback(informer);
    }
    while (!signal.aborted && (await this.stillServed(signal))) await sleep(this.interval * 5, signal);
    stop.abort();
    await running;
    if (signal.aborted) return;
    // The resource went (its CRD deleted), and every object of it with it.
    this.logger.info("resource is no longer served; its objects are gone");
    const gone = informer.list();
    this.current = undefined;
    this.phase = "absent";
    for (const object of gone) {
      for (const h of this.handlers) {
        try {
          h.onDelete?.(object, { finalStateUnknown: true });
        } catch (err) {
          this.logger.error("delete handler failed", { error: err });
        }
      }
    }
  }

  /** Whether discovery still serves the resource (a failed look counts as served). */
  private async stillServed(signal: AbortSignal): Promise<boolean> {
    try {
      return await isServed(this.client, this.type, signal);
    } catch {
      return true;
    }
  }
}
