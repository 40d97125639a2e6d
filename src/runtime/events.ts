// An events.k8s.io/v1 event recorder: fire and forget (never blocks or throws into the caller), a bounded
// queue, and aggregation of repeated identical events into one Event whose `series.count` grows.
import { randomBytes } from "node:crypto";
import { CoreTypes, isAlreadyExists, isNotFound, type KubeClient, type KubeObject } from "./kube.ts";
import { discardLogger, type Logger } from "./logger.ts";
import { type Registry, type RuntimeMetrics, runtimeMetrics } from "./metrics.ts";
import { formatMicroTime, sleep } from "./util.ts";

export type EventType = "Normal" | "Warning";

export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

export interface EventSeries {
  count: number;
  lastObservedTime: string;
}

/** An events.k8s.io/v1 Event. */
export interface KubeEvent extends KubeObject {
  eventTime: string;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  note?: string;
  type: EventType;
  regarding: ObjectReference;
  related?: ObjectReference;
  series?: EventSeries;
}

export interface EventRecorderOptions {
  /** E.g. `ipam.example.org/controller` (required by the API). */
  reportingController: string;
  /** E.g. the pod name or `hostname_id` (required by the API). */
  reportingInstance: string;
  logger?: Logger;
  registry?: Registry;
  /** Pending writes beyond this are dropped (logged, counted). Default 1000. */
  maxQueue?: number;
  /** Pending low-priority writes beyond this are shed (counted as `shed`). Default 100. */
  maxLowPriorityQueue?: number;
  /** Least time between two low-priority writes (default 50 ms: at most 20 a second). */
  lowPriorityIntervalMs?: number;
  /** Identical events within this window join one series (default 6 min, like client-go). */
  seriesWindowMs?: number;
  /** How many distinct events are remembered for aggregation (default 4096). */
  maxCache?: number;
}

export interface EventOptions {
  /** What was done (required by the API; default: the reason). */
  action?: string;
  related?: KubeObject | ObjectReference;
  /**
   * `low`: written only when no other event waits, at most one per `lowPriorityIntervalMs`, and shed
   * first (its queue is small) — for events that are nice to have, such as one per allocation.
   */
  priority?: "normal" | "low";
}

function toRef(o: KubeObject | ObjectReference): ObjectReference {
  if ("metadata" in o && typeof o.metadata === "object" && o.metadata !== null) {
    const m = (o as KubeObject).metadata;
    const ref: ObjectReference = { apiVersion: o.apiVersion, kind: o.kind, name: m.name };
    if (m.namespace) ref.namespace = m.namespace;
    if (m.uid) ref.uid = m.uid;
    if (m.resourceVersion) ref.resourceVersion = m.resourceVersion;
    return ref;
  }
  return { ...(o as ObjectReference) };
}

/** Truncates to at most `max` UTF-8 bytes (the API limits notes to 1 kB). */
export function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s, "utf8") <= max) return s;
  let out = Buffer.from(s, "utf8").subarray(0, max).toString("utf8");
  // A cut inside a multi-byte character leaves a replacement character at the end.
  while (out.endsWith("\uFFFD") || Buffer.byteLength(out, "utf8") > max) out = out.slice(0, -1);
  return out;
}

/** The identity of an event for aggregation: same object, type, reason, action, note and reporter. */
export function eventKey(e: Pick<KubeEvent, "regarding" | "type" | "reason" | "action" | "note">): string {
  const r = e.regarding;
  return JSON.stringify([
    r.apiVersion ?? "",
    r.kind ?? "",
    r.namespace ?? "",
    r.name ?? "",
    r.uid ?? "",
    r.fieldPath ?? "",
    e.type,
    e.reason,
    e.action,
    e.note ?? "",
  ]);
}

interface Entry {
  key: string;
  event: KubeEvent;
  count: number;
  lastSeen: number;
  /** Written to the API (as `event.metadata.name`). */
  created: boolean;
  /** Count changed since the last write. */
  dirty: boolean;
  queued: boolean;
}

/**
 * The aggregation bookkeeping (pure; exposed for tests): `observe` says whether an occurrence starts a
 * new Event or adds to an existing series.
 */
export class EventAggregator {
  private readonly entries = new Map<string, Entry>();
  constructor(
    private readonly windowMs = 6 * 60_000,
    private readonly maxEntries = 4096,
    private readonly now: () => number = () => Date.now(),
  ) {}

  observe(event: KubeEvent): { entry: Entry; isNew: boolean } {
    const key = eventKey(event);
    const t = this.now();
    const existing = this.entries.get(key);
    if (existing && t - existing.lastSeen <= this.windowMs) {
      existing.count++;
      existing.lastSeen = t;
      existing.dirty = true;
      // Keep recently used entries at the end (LRU order).
      this.entries.delete(key);
      this.entries.set(key, existing);
      return { entry: existing, isNew: false };
    }
    const entry: Entry = { key, event, count: 1, lastSeen: t, created: false, dirty: true, queued: false };
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    return { entry, isNew: true };
  }

  forget(entry: Entry): void {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
  }

  get size(): number {
    return this.entries.size;
  }
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly opts: EventRecorderOptions;
  private readonly logger: Logger;
  private readonly metrics: RuntimeMetrics;
  private readonly aggregator: EventAggregator;
  private readonly maxQueue: number;
  private queue: Entry[] = [];
  /** Low-priority entries, served when `queue` is empty. */
  private low: Entry[] = [];
  private lastLowWrite = 0;
  private working = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private lastDropLog = 0;

  constructor(client: KubeClient, options: EventRecorderOptions) {
    this.client = client;
    this.opts = options;
    this.logger = (options.logger ?? discardLogger()).child("events");
    this.metrics = runtimeMetrics(options.registry);
    this.aggregator = new EventAggregator(options.seriesWindowMs, options.maxCache);
    this.maxQueue = options.maxQueue ?? 1000;
  }

  /** Records an event about `regarding`. Never throws, never waits. */
  event(
    regarding: KubeObject | ObjectReference,
    type: EventType,
    reason: string,
    note: string,
    options: EventOptions = {},
  ): void {
    try {
      if (this.stopped) return;
      const ref = toRef(regarding);
      const now = formatMicroTime();
      const ev: KubeEvent = {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { namespace: ref.namespace || "default" },
        eventTime: now,
        reportingController: this.opts.reportingController,
        reportingInstance: this.opts.reportingInstance,
        action: (options.action || reason).slice(0, 128),
        reason: reason.slice(0, 128),
        note: truncateUtf8(note, 1024),
        type,
        regarding: ref,
      };
      if (options.related) ev.related = toRef(options.related);
      const { entry } = this.aggregator.observe(ev);
      entry.event.series = entry.count > 1 ? { count: entry.count, lastObservedTime: now } : undefined;
      if (options.priority === "low") this.scheduleLow(entry);
      else this.schedule(entry);
    } catch (err) {
      this.logger.error("failed to record event", { error: err, reason });
    }
  }

  normal(
    regarding: KubeObject | ObjectReference,
    reason: string,
    note: string,
    options?: EventOptions,
  ): void {
    this.event(regarding, "Normal", reason, note, options);
  }

  warning(
    regarding: KubeObject | ObjectReference,
    reason: string,
    note: string,
    options?: EventOptions,
  ): void {
    this.event(regarding, "Warning", reason, note, options);
  }

  /** Resolves when every queued write has been attempted. */
  flush(): Promise<void> {
    if (!this.working && this.queue.length === 0 && this.low.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops accepting events and waits (at most `timeoutMs`, default 5 s) for queued writes. */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.stopped = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flush(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
  }

  private schedule(entry: Entry): void {
    if (entry.queued) return;
    if (this.queue.length >= this.maxQueue) {
      this.metrics.eventsDropped.inc({ reason: "queue_full" });
      const now = Date.now();
      if (now - this.lastDropLog > 10_000) {
        this.lastDropLog = now;
        this.logger.warn("event queue full; dropping events", { maxQueue: this.maxQueue });
      }
      if (!entry.created) this.aggregator.forget(entry);
      return;
    }
    entry.queued = true;
    this.queue.push(entry);
    if (!this.working) void this.work();
  }

  private scheduleLow(entry: Entry): void {
    if (entry.queued) return;
    if (this.low.length >= (this.opts.maxLowPriorityQueue ?? 100)) {
      this.metrics.eventsDropped.inc({ reason: "shed" });
      if (!entry.created) this.aggregator.forget(entry);
      return;
    }
    entry.queued = true;
    this.low.push(entry);
    if (!this.working) void this.work();
  }

  /** The next entry to write: any regular one first; a low-priority one only when spaced out. */
  private async next(): Promise<Entry | undefined> {
    const regular = this.queue.shift();
    if (regular) return regular;
    if (this.low.length === 0) return undefined;
    const wait = this.lastLowWrite + (this.opts.lowPriorityIntervalMs ?? 50) - Date.now();
    if (wait > 0) {
      await sleep(wait);
      // A regular event that arrived meanwhile goes first.
      const arrived = this.queue.shift();
      if (arrived) return arrived;
    }
    this.lastLowWrite = Date.now();
    return this.low.shift();
  }

  private async work(): Promise<void> {
    this.working = true;
    try {
      for (let entry = await this.next(); entry; entry = await this.next()) {
        entry.queued = false;
        try {
          await this.write(entry);
        } catch (err) {
          this.metrics.eventsDropped.inc({ reason: "api_error" });
          this.logger.warn("failed to write event", { error: err, reason: entry.event.reason });
          if (!entry.created) this.aggregator.forget(entry);
        }
      }
    } finally {
      this.working = false;
      const ws = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of ws) w();
    }
  }

  private eventName(regardingName: string | undefined): string {
    const suffix = `${Date.now().toString(16)}${randomBytes(4).toString("hex")}`;
    const base = (regardingName || "event").slice(0, 253 - suffix.length - 1);
    return `${base}.${suffix}`;
  }

  private async write(entry: Entry): Promise<void> {
    if (!entry.dirty) return;
    entry.dirty = false;
    const ns = entry.event.metadata.namespace ?? "default";
    const series = entry.count > 1 ? { count: entry.count, lastObservedTime: formatMicroTime() } : undefined;
    if (entry.created && series) {
      try {
        await this.client.patch(
          CoreTypes.event,
          entry.event.metadata.name ?? "",
          { series },
          { namespace: ns, patchType: "merge" },
        );
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        entry.created = false; // expired or deleted: write it again
      }
    }
    if (entry.created) return;
    for (let attempt = 0; ; attempt++) {
      const body: KubeEvent = {
        ...entry.event,
        metadata: { namespace: ns, name: this.eventName(entry.event.regarding.name) },
        series,
      };
      if (!series) body.series = undefined;
      try {
        const created = await this.client.create<KubeEvent>(CoreTypes.event, body, { namespace: ns });
        entry.event.metadata.name = created.metadata.name ?? body.metadata.name;
        entry.created = true;
        return;
      } catch (err) {
        if (isAlreadyExists(err) && attempt < 2) continue;
        throw err;
      }
    }
  }
}
