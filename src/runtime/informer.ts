// A list-then-watch cache of one resource type: paginated list, watch with bookmarks from the list's
// resourceVersion, relist on 410 Gone, jittered backoff on every other error (logged, never giving up),
// a synced signal, event handlers, and indexes.
import {
  ApiError,
  isGone,
  type KubeClient,
  type KubeObject,
  objectKey,
  type ResourceType,
  type WatchEvent,
} from "./kube.ts";
import { discardLogger, type Logger } from "./logger.ts";
import { type Registry, type RuntimeMetrics, runtimeMetrics } from "./metrics.ts";
import { stripManagedFields } from "./transforms.ts";
import { Backoff, type BackoffOptions, sleep } from "./util.ts";

export interface DeleteInfo {
  /** True when the delete was inferred from a relist (the object's final state is unknown). */
  finalStateUnknown: boolean;
}

export interface EventHandlers<T> {
  /** `isInInitialList`: the object came with the first list (startup). */
  onAdd?: (obj: T, isInInitialList: boolean) => unknown;
  onUpdate?: (oldObj: T, newObj: T) => unknown;
  onDelete?: (obj: T, info: DeleteInfo) => unknown;
}

export type IndexFunc<T> = (obj: T) => string[];

export interface InformerOptions<T> {
  /** Watch one namespace only (default: all). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** List page size (default 500). */
  pageSize?: number;
  logger?: Logger;
  registry?: Registry;
  /** Re-deliver every object as an update (old === new) this often; off by default. */
  resyncPeriodMs?: number;
  /**
   * Applied once to each object as it arrives (list page or watch event), before it is stored or handed
   * to handlers (default: drop `metadata.managedFields`; see transforms.ts for `compactObjects`).
   */
  transform?: (obj: T) => T;
  backoff?: BackoffOptions;
  /** Watch requests last a random time between this and twice this (default 300 s, like client-go). */
  minWatchTimeoutSeconds?: number;
  /** Called with each failed list (before the retry): lets an owner react to, e.g., a 403. */
  onListError?: (err: unknown) => void;
}

interface RelistWaiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Index<T> {
  fn: IndexFunc<T>;
  // Most values have one key and most objects one value (an index by uid): a lone string then stands
  // for the one-element Set or array, which would cost some hundred bytes per object at scale.
  byValue: Map<string, string | Set<string>>;
  valuesOf: Map<string, string | string[]>;
}

/** The watch stream ended normally (server timeout or close); re-watch from the last resourceVersion. */
class ShortWatchError extends Error {
  override readonly name = "ShortWatchError";
}

export class Informer<T extends KubeObject = KubeObject> {
  readonly type: ResourceType;
  private readonly client: KubeClient;
  private readonly opts: InformerOptions<T>;
  private readonly logger: Logger;
  private readonly metrics: RuntimeMetrics;
  private readonly store = new Map<string, T>();
  private readonly indexes = new Map<string, Index<T>>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly transform: (obj: T) => T;
  private readonly stopController = new AbortController();
  private synced = false;
  private syncWaiters: ((synced: boolean) => void)[] = [];
  private resourceVersion = "";
  private running: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** Callers of relist() waiting for the next list to be applied. */
  private relistWaiters: RelistWaiter[] = [];
  /** Aborts the current watch request only (relist() asks for a fresh list). */
  private watchAbort: AbortController | undefined;

  constructor(client: KubeClient, type: ResourceType, options: InformerOptions<T> = {}) {
    this.client = client;
    this.type = type;
    this.opts = options;
    this.logger = (options.logger ?? discardLogger()).child("informer", {
      resource: type.group ? `${type.plural}.${type.group}` : type.plural,
      ...(options.namespace ? { namespace: options.namespace } : {}),
    });
    this.metrics = runtimeMetrics(options.registry);
    this.transform = options.transform ?? stripManagedFields;
  }

  // -------------------------------------------------------------------------------------------------------
  // Handlers

  /**
   * Adds handlers. If the informer already holds objects they are delivered to the new handler as adds.
   * Handlers run synchronously in event order; exceptions (and rejected promises) are logged and ignored.
   * Handlers must not modify the objects. Returns a function that removes the handlers.
   */
  addEventHandler(handlers: EventHandlers<T>): () => void {
    this.handlers.push(handlers);
    if (handlers.onAdd && this.store.size > 0) {
      for (const obj of this.store.values()) this.call(handlers, "onAdd", () => handlers.onAdd?.(obj, true));
    }
    return () => {
      const i = this.handlers.indexOf(handlers);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  onAdd(fn: NonNullable<EventHandlers<T>["onAdd"]>): this {
    this.addEventHandler({ onAdd: fn });
    return this;
  }
  onUpdate(fn: NonNullable<EventHandlers<T>["onUpdate"]>): this {
    this.addEventHandler({ onUpdate: fn });
    return this;
  }
  onDelete(fn: NonNullable<EventHandlers<T>["onDelete"]>): this {
    this.addEventHandler({ onDelete: fn });
    return this;
  }

  // -------------------------------------------------------------------------------------------------------
  // Store and indexes

  /** The object with key `namespace/name` (or `name` for cluster-scoped types). */
  get(key: string): T | undefined {
    return this.store.get(key);
  }

  getByName(name: string, namespace?: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  get size(): number {
    return this.store.size;
  }

  /** Adds an index; `fn` maps an object to its index values. May be called at any time. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.indexes.has(name)) throw new Error(`index ${name} already exists`);
    const index: Index<T> = { fn, byValue: new Map(), valuesOf: new Map() };
    this.indexes.set(name, index);
    for (const [key, obj] of this.store) this.indexOne(index, name, key, obj);
  }

  /** Objects whose index `name` contains `value`. */
  byIndex(name: string, value: string): T[] {
    const keys = this.indexKeys(name, value);
    const out: T[] = [];
    for (const k of keys) {
      const obj = this.store.get(k);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** Keys of the objects whose index `name` contains `value`. */
  indexKeys(name: string, value: string): string[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index named ${name}`);
    const keys = index.byValue.get(value);
    return keys === undefined ? [] : typeof keys === "string" ? [keys] : [...keys];
  }

  // -------------------------------------------------------------------------------------------------------
  // Lifecycle

  /** True once start() was called (the informer may not have listed anything yet). */
  hasStarted(): boolean {
    return this.running !== undefined;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** The resourceVersion of the last list, watch event or bookmark seen. */
  lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  /** True once the first list is in the store; false if `signal` aborts or the informer stops first. */
  waitForSync(signal?: AbortSignal): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (this.stopController.signal.aborted || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = (ok: boolean) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(ok);
      };
      const onAbort = () => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
        resolve(false);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.syncWaiters.push(waiter);
    });
  }

  /** Starts listing and watching; the promise resolves once stopped (it never rejects). */
  start(signal?: AbortSignal): Promise<void> {
    if (this.running) return this.running;
    if (signal) {
      if (signal.aborted) this.stop();
      else signal.addEventListener("abort", () => this.stop(), { once: true });
    }
    this.running = this.run();
    return this.running;
  }

  stop(): void {
    if (this.stopController.signal.aborted) return;
    this.stopController.abort(new Error("informer stopped"));
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    const ws = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of ws) w(false);
    for (const w of this.relistWaiters.splice(0)) w.reject(new Error("informer stopped"));
  }

  /**
   * Lists again now (a consistent read) and resolves once the store reflects that list: afterwards the
   * cache holds every change the API server had committed before this call. Concurrent calls share a
   * list that starts after the latest of them. Rejects if the informer stops first.
   */
  relist(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("informer stopped"));
    return new Promise((resolve, reject) => {
      this.relistWaiters.push({ resolve, reject });
      this.watchAbort?.abort(new Error("relist requested"));
    });
  }

  get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  // -------------------------------------------------------------------------------------------------------
  // List and watch

  private async run(): Promise<void> {
    const signal = this.stopController.signal;
    const backoff = new Backoff(this.opts.backoff);
    let needList = true;
    let watchFailures = 0;
    if (this.opts.resyncPeriodMs && this.opts.resyncPeriodMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncPeriodMs);
    }
    while (!signal.aborted) {
      let waiters: RelistWaiter[] = [];
      try {
        if (needList || this.relistWaiters.length > 0) {
          // Taken before the list starts, so the list is newer than every waiter's call.
          waiters = this.relistWaiters.splice(0);
          await this.listAndReplace(signal);
          needList = false;
          watchFailures = 0;
          backoff.reset();
          for (const w of waiters) w.resolve();
          waiters = [];
        }
        if (signal.aborted) break;
        const received = await this.watchUntilCut(signal);
        if (received > 0) {
          backoff.reset();
          watchFailures = 0;
        }
      } catch (err) {
        this.relistWaiters.unshift(...waiters);
        if (signal.aborted) break;
        // The watch was cut to serve relist(): no failure, list at once.
        if (this.watchAbort?.signal.aborted && this.relistWaiters.length > 0) continue;
        if (isGone(err)) {
          this.metrics.informerRelists.inc({ resource: this.type.plural });
          this.logger.info("watch expired (410 Gone); relisting", {
            resourceVersion: this.resourceVersion,
            error: err,
          });
          needList = true;
          continue;
        }
        this.metrics.informerWatchErrors.inc({ resource: this.type.plural });
        if (needList) this.opts.onListError?.(err);
        if (!needList) {
          watchFailures++;
          // Watches that keep failing for other reasons: start over with a fresh list.
          if (watchFailures >= 3) needList = true;
        }
        const delay = backoff.next();
        if (err instanceof ShortWatchError) {
          this.logger.debug(err.message, { retryInMs: Math.round(delay) });
        } else {
          this.logger.warn(needList ? "list failed; retrying" : "watch failed; retrying", {
            error: err,
            attempt: backoff.attempts,
            retryInMs: Math.round(delay),
          });
        }
        await sleep(delay, signal);
      }
    }
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.logger.debug("stopped");
  }

  private async listAndReplace(signal: AbortSignal): Promise<void> {
    this.metrics.informerLists.inc({ resource: this.type.plural });
    const list = await this.client.listAll<T>(this.type, {
      namespace: this.opts.namespace,
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
      pageSize: this.opts.pageSize ?? 500,
      signal,
      // Per page, so a large initial list never holds every object's managedFields at once.
      transform: this.transform,
    });
    if (signal.aborted) return;
    this.replace(list.items, list.resourceVersion);
  }

  /** Replaces the store with a fresh list: adds, updates for changed objects, deletes for vanished ones. */
  private replace(items: T[], resourceVersion: string): void {
    const initial = !this.synced;
    const seen = new Set<string>();
    // Transformed already, page by page, as the list arrived.
    for (const obj of items) {
      const key = objectKey(obj);
      seen.add(key);
      const old = this.store.get(key);
      this.put(key, obj);
      if (!old) this.dispatchAdd(obj, initial);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.dispatchUpdate(old, obj);
    }
    const gone: [string, T][] = [];
    for (const [key, obj] of this.store) if (!seen.has(key)) gone.push([key, obj]);
    for (const [key, obj] of gone) {
      this.remove(key);
      this.dispatchDelete(obj, { finalStateUnknown: true });
    }
    this.resourceVersion = resourceVersion;
    this.logger.debug("listed", { objects: items.length, resourceVersion });
    if (!this.synced) {
      this.synced = true;
      const ws = this.syncWaiters;
      this.syncWaiters = [];
      for (const w of ws) w(true);
    }
  }

  /** One watch, ended by the server, by stop(), or by relist(); returns the events received. */
  private async watchUntilCut(signal: AbortSignal): Promise<number> {
    // relist() called while the list ran found no watch to cut: list again at once.
    if (this.relistWaiters.length > 0) return 0;
    const cut = new AbortController();
    this.watchAbort = cut;
    // A listener per watch, removed after it (AbortSignal.any would keep one per watch on `signal`).
    const onStop = () => cut.abort(signal.reason);
    signal.addEventListener("abort", onStop, { once: true });
    try {
      return await this.watchOnce(cut.signal);
    } finally {
      signal.removeEventListener("abort", onStop);
    }
  }

  /** One watch request; returns the number of events received when the server ends it. */
  private async watchOnce(signal: AbortSignal): Promise<number> {
    const min = this.opts.minWatchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.floor(min * (1 + Math.random()));
    const started = performance.now();
    let received = 0;
    const events = this.client.watch<T>(
      this.type,
      {
        namespace: this.opts.namespace,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
      },
      signal,
    );
    for await (const ev of events) {
      received++;
      this.handleEvent(ev);
    }
    if (!signal.aborted && received === 0 && performance.now() - started < 1000) {
      throw new ShortWatchError("watch closed immediately without events");
    }
    return received;
  }

  private handleEvent(ev: WatchEvent<T>): void {
    if (ev.type === "ERROR") throw ApiError.fromStatus(ev.object, "watch", this.type.plural);
    const rv = ev.object.metadata?.resourceVersion;
    if (ev.type === "BOOKMARK") {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const obj = this.transform(ev.object);
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (ev.type === "DELETED") {
      if (rv) this.resourceVersion = rv;
      if (old) this.remove(key);
      this.dispatchDelete(obj, { finalStateUnknown: false });
      return;
    }
    this.put(key, obj);
    if (rv) this.resourceVersion = rv;
    if (old) this.dispatchUpdate(old, obj);
    else this.dispatchAdd(obj, false);
  }

  private resync(): void {
    if (!this.synced) return;
    for (const obj of this.store.values()) this.dispatchUpdate(obj, obj);
  }

  private put(key: string, obj: T): void {
    this.store.set(key, obj);
    for (const [name, index] of this.indexes) this.indexOne(index, name, key, obj);
  }

  private remove(key: string): void {
    this.store.delete(key);
    for (const index of this.indexes.values()) this.unindex(index, key);
  }

  private indexOne(index: Index<T>, name: string, key: string, obj: T): void {
    this.unindex(index, key);
    let values: string[];
    try {
      values = index.fn(obj);
    } catch (err) {
      this.logger.error("index function failed", { index: name, key, error: err });
      values = [];
    }
    if (values.length === 0) return;
    index.valuesOf.set(key, values.length === 1 ? (values[0] as string) : values);
    for (const v of values) {
      const keys = index.byValue.get(v);
      if (keys === undefined) index.byValue.set(v, key);
      else if (typeof keys !== "string") keys.add(key);
      else if (keys !== key) index.byValue.set(v, new Set([keys, key]));
    }
  }

  private unindex(index: Index<T>, key: string): void {
    const old = index.valuesOf.get(key);
    if (old === undefined) return;
    index.valuesOf.delete(key);
    for (const v of typeof old === "string" ? [old] : old) {
      const keys = index.byValue.get(v);
      if (keys === undefined) continue;
      if (typeof keys === "string") {
        if (keys === key) index.byValue.delete(v);
        continue;
      }
      keys.delete(key);
      if (keys.size === 1) index.byValue.set(v, keys.values().next().value as string);
      else if (keys.size === 0) index.byValue.delete(v);
    }
  }

  private dispatchAdd(obj: T, initial: boolean): void {
    for (const h of [...this.handlers]) if (h.onAdd) this.call(h, "onAdd", () => h.onAdd?.(obj, initial));
  }
  private dispatchUpdate(oldObj: T, newObj: T): void {
    for (const h of [...this.handlers]) {
      if (h.onUpdate) this.call(h, "onUpdate", () => h.onUpdate?.(oldObj, newObj));
    }
  }
  private dispatchDelete(obj: T, info: DeleteInfo): void {
    for (const h of [...this.handlers])
      if (h.onDelete) this.call(h, "onDelete", () => h.onDelete?.(obj, info));
  }

  private call(_h: EventHandlers<T>, which: string, fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) {
        r.catch((err: unknown) => {
          this.logger.error("event handler failed", { handler: which, error: err });
        });
      }
    } catch (err) {
      this.logger.error("event handler failed", { handler: which, error: err });
    }
  }
}
