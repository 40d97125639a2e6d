// A small, generic Kubernetes REST client over a client-node KubeConfig: keep-alive HTTPS, typed errors,
// streaming watches, and a hook to observe or wrap every request (metrics, fault injection).
import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import type { KubeConfig } from "@kubernetes/client-node";
import { discardLogger, type Logger } from "./logger.ts";
import { type Registry, type RuntimeMetrics, runtimeMetrics } from "./metrics.ts";

// ---------------------------------------------------------------------------------------------------------
// Object model

export interface ResourceType {
  /** API group, `""` for the core group (served under `/api/v1`). */
  group: string;
  version: string;
  /** Lower-case plural, the URL segment (`configmaps`). */
  plural: string;
  kind: string;
  namespaced: boolean;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: unknown[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A `meta/v1` Status, as returned for errors and some deletes. */
export interface Status {
  kind: "Status";
  apiVersion?: string;
  status?: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code?: number;
}

export interface ObjectList<T> {
  items: T[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
export type WatchEvent<T> = { type: WatchEventType; object: T } | { type: "ERROR"; object: Status };

/** `group/version`, or `version` for the core group. */
export function apiVersionOf(type: ResourceType): string {
  return type.group === "" ? type.version : `${type.group}/${type.version}`;
}

/** The store/queue key of an object: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  const name = obj.metadata.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

/** Splits a key made by `objectKey` into namespace (undefined if cluster-scoped) and name. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf("/");
  if (i < 0) return { namespace: undefined, name: key };
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Some built-in types. */
export const CoreTypes = {
  namespace: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  configMap: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  secret: { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true },
  serviceAccount: {
    group: "",
    version: "v1",
    plural: "serviceaccounts",
    kind: "ServiceAccount",
    namespaced: true,
  },
  lease: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  event: { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
  customResourceDefinition: {
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    kind: "CustomResourceDefinition",
    namespaced: false,
  },
} as const satisfies Record<string, ResourceType>;

// ---------------------------------------------------------------------------------------------------------
// Errors

const REASON_BY_CODE: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  406: "NotAcceptable",
  409: "Conflict",
  410: "Expired",
  413: "RequestEntityTooLarge",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** An error answer of the API server (any non-2xx HTTP status). */
export class ApiError extends Error {
  override readonly name = "ApiError";
  /** HTTP status code. */
  readonly status: number;
  /** The Status `reason` (`NotFound`, `Conflict`, `AlreadyExists`, `Expired`, `Invalid`, …). */
  readonly reason: string;
  readonly details: StatusDetails | undefined;
  /** The decoded body (a Status for API errors). */
  readonly body: unknown;
  readonly verb: string;
  readonly resource: string;

  constructor(init: {
    status: number;
    reason?: string;
    message?: string;
    details?: StatusDetails;
    body?: unknown;
    verb?: string;
    resource?: string;
  }) {
    const reason = init.reason || REASON_BY_CODE[init.status] || "Unknown";
    super(init.message || `${reason} (HTTP ${init.status})`);
    this.status = init.status;
    this.reason = reason;
    this.details = init.details;
    this.body = init.body;
    this.verb = init.verb ?? "";
    this.resource = init.resource ?? "";
  }

  /** Builds an ApiError from a Status object (e.g. a watch ERROR event). */
  static fromStatus(status: Status, verb = "", resource = ""): ApiError {
    return new ApiError({
      status: status.code ?? 500,
      reason: status.reason,
      message: status.message,
      details: status.details,
      body: status,
      verb,
      resource,
    });
  }
}

/** The client gave up waiting for an answer; the request may or may not have been applied. */
export class RequestTimeoutError extends Error {
  override readonly name = "RequestTimeoutError";
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number) {
    super(message);
    this.timeoutMs = timeoutMs;
  }
}

function apiErr(err: unknown): ApiError | undefined {
  return err instanceof ApiError ? err : undefined;
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}
export function isNotFound(err: unknown): boolean {
  return apiErr(err)?.status === 404;
}
/** 409 other than AlreadyExists: an optimistic-concurrency (resourceVersion) conflict. */
export function isConflict(err: unknown): boolean {
  const e = apiErr(err);
  return e !== undefined && e.status === 409 && e.reason !== "AlreadyExists";
}
export function isAlreadyExists(err: unknown): boolean {
  const e = apiErr(err);
  return e !== undefined && e.status === 409 && e.reason === "AlreadyExists";
}
/** 410: the resourceVersion is too old (watch/list continue expired). */
export function isGone(err: unknown): boolean {
  return apiErr(err)?.status === 410;
}
export function isForbidden(err: unknown): boolean {
  return apiErr(err)?.status === 403;
}
export function isUnauthorized(err: unknown): boolean {
  return apiErr(err)?.status === 401;
}
export function isInvalid(err: unknown): boolean {
  return apiErr(err)?.status === 422;
}
export function isTooManyRequests(err: unknown): boolean {
  return apiErr(err)?.status === 429;
}
/** A timeout on either side: the outcome of a write is unknown. */
export function isTimeout(err: unknown): boolean {
  if (err instanceof RequestTimeoutError) return true;
  const e = apiErr(err);
  return e !== undefined && (e.status === 504 || e.reason === "Timeout" || e.reason === "ServerTimeout");
}
/** The request was aborted by the caller's AbortSignal. */
export function isAbortError(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === "AbortError" || (err as { code?: unknown }).code === "ABORT_ERR")
  );
}

// ---------------------------------------------------------------------------------------------------------
// Transport and hooks

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One HTTP request to the API server, as seen by hooks. */
export interface KubeRequest {
  method: HttpMethod;
  /** Path relative to the server URL, with the query string. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Kubernetes verb: get, list, watch, create, update, patch, delete (or `raw`). */
  verb: string;
  /** `plural` or `plural/subresource`; `""` for raw requests. */
  resource: string;
  namespace?: string;
  name?: string;
  watch: boolean;
  /** For watches: until the response headers arrive. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** An HTTP answer. Non-watch answers are read completely into `body`; a watch with status 200 has `stream`. */
export interface KubeResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body?: Buffer;
  stream?: Readable;
}

export type RequestHandler = (req: KubeRequest) => Promise<KubeResponse>;
/**
 * Wraps every request. Call `next(req)` to send it (possibly changed); throw before `next` to fail it
 * unsent, or after `next` to lose the answer of an applied request (ambiguous outcome). A hook that drops a
 * watch `stream` must `destroy()` it.
 */
export type RequestHook = (req: KubeRequest, next: RequestHandler) => Promise<KubeResponse>;

export interface KubeClientOptions {
  /** Default timeout for non-watch requests, ms (default 30 s). */
  timeoutMs?: number;
  /** Maximum sockets of the pool for ordinary requests (default 128). Watches use their own pool. */
  maxSockets?: number;
  userAgent?: string;
  hooks?: RequestHook[];
  registry?: Registry;
  logger?: Logger;
  /** Retries of a 429 Too Many Requests (honouring Retry-After, default 5). */
  maxRetries429?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}
export interface NamespacedOptions extends RequestOptions {
  namespace?: string;
}
export interface ListOptions extends NamespacedOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: "Exact" | "NotOlderThan";
}
export interface ListAllOptions<T extends KubeObject = KubeObject>
  extends Omit<ListOptions, "limit" | "continue"> {
  /** Page size (default 500). */
  pageSize?: number;
  /** Applied to each item as its page arrives (e.g. dropping managedFields keeps the peak low). */
  transform?: (item: T) => T;
}
export interface WriteOptions extends NamespacedOptions {
  fieldManager?: string;
  dryRun?: boolean;
  fieldValidation?: "Ignore" | "Warn" | "Strict";
}
export type PatchType = "merge" | "json" | "strategic" | "apply";
export interface PatchOptions extends WriteOptions {
  /** Default `merge`. `apply` is server-side apply and needs `fieldManager`. */
  patchType?: PatchType;
  /** Server-side apply: take over conflicting fields. */
  force?: boolean;
}
export interface DeleteOptions extends NamespacedOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  gracePeriodSeconds?: number;
  dryRun?: boolean;
}
export interface WatchOptions {
  namespace?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
  labelSelector?: string;
  fieldSelector?: string;
  /** Give up when no bytes arrive for this long (default: timeoutSeconds + 60 s, or 6 min). */
  idleTimeoutMs?: number;
}

export type JsonPatchOp =
  | { op: "add" | "replace" | "test"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "move" | "copy"; from: string; path: string };

const CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

// ---------------------------------------------------------------------------------------------------------
// Newline-delimited JSON (watch streams)

/** Splits a byte stream into lines at `\n`, across chunk boundaries and inside multi-byte characters. */
export class LineDecoder {
  private parts: Buffer[] = [];

  /** Complete non-empty lines contained so far. */
  push(chunk: Buffer | string): string[] {
    const buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      const piece = buf.subarray(start, nl);
      let line: string;
      if (this.parts.length > 0) {
        this.parts.push(piece);
        line = Buffer.concat(this.parts).toString("utf8");
        this.parts = [];
      } else {
        line = piece.toString("utf8");
      }
      if (line.trim() !== "") lines.push(line);
      start = nl + 1;
    }
    if (start < buf.length) this.parts.push(buf.subarray(start));
    return lines;
  }

  /** The unterminated rest, if any. */
  end(): string[] {
    if (this.parts.length === 0) return [];
    const line = Buffer.concat(this.parts).toString("utf8");
    this.parts = [];
    return line.trim() === "" ? [] : [line];
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses one watch line into an event; throws on malformed input. */
export function parseWatchEvent<T>(line: string): WatchEvent<T> {
  const parsed: unknown = JSON.parse(line);
  if (!isRecord(parsed) || typeof parsed.type !== "string" || !isRecord(parsed.object)) {
    throw new Error(`malformed watch event: ${line.slice(0, 200)}`);
  }
  const type = parsed.type;
  if (type === "ERROR") return { type, object: parsed.object as unknown as Status };
  if (type === "ADDED" || type === "MODIFIED" || type === "DELETED" || type === "BOOKMARK") {
    return { type, object: parsed.object as unknown as T };
  }
  throw new Error(`unknown watch event type ${type}`);
}

// ---------------------------------------------------------------------------------------------------------
// Client

interface AuthState {
  headers: Record<string, string>;
  agent: http.Agent;
  watchAgent: http.Agent;
  expires: number;
}

const AUTH_CACHE_MS = 5_000;

function headerRecord(h: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(h)) return out;
  for (const [k, v] of Object.entries(h)) {
    if (typeof v === "string" || typeof v === "number") out[k] = String(v);
    else if (Array.isArray(v)) out[k] = v.map(String).join(", ");
  }
  return out;
}

function tlsFingerprint(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (Buffer.isBuffer(v)) return v.toString("base64");
  if (Array.isArray(v)) return v.map(tlsFingerprint).join(",");
  return String(v);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Loads a kubeconfig file, or the default chain (KUBECONFIG, ~/.kube/config, in-cluster). client-node is
 * imported lazily: it is slow to load and most of the runtime needs only its types.
 */
export async function loadKubeConfig(path?: string, context?: string): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  return kc;
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly server: URL;
  private readonly basePath: string;
  private readonly timeoutMs: number;
  private readonly maxSockets: number;
  private readonly userAgent: string;
  private readonly hooks: RequestHook[];
  private readonly metrics: RuntimeMetrics;
  private readonly logger: Logger;
  private readonly maxRetries429: number;
  private auth: AuthState | undefined;
  private authPending: Promise<AuthState> | undefined;
  private tlsKey = "";
  private readonly agents: http.Agent[] = [];

  constructor(kubeConfig: KubeConfig, options: KubeClientOptions = {}) {
    this.kubeConfig = kubeConfig;
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.server = new URL(cluster.server);
    this.basePath = this.server.pathname.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxSockets = options.maxSockets ?? 128;
    this.userAgent = options.userAgent ?? "kubipam/0.1.0";
    this.hooks = [...(options.hooks ?? [])];
    this.metrics = runtimeMetrics(options.registry);
    this.logger = options.logger ?? discardLogger();
    this.maxRetries429 = options.maxRetries429 ?? 5;
  }

  /** Adds a hook (outermost). Returns a function that removes it. */
  use(hook: RequestHook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** Closes pooled connections. Watches still open are destroyed. */
  close(): void {
    for (const a of this.agents) a.destroy();
    this.agents.length = 0;
    this.auth = undefined;
  }

  // -------------------------------------------------------------------------------------------------------
  // Typed operations

  async get<T extends KubeObject = KubeObject>(
    type: ResourceType,
    name: string,
    opts: NamespacedOptions = {},
  ): Promise<T> {
    const ns = this.requireNamespace(type, opts.namespace);
    return this.call<T>({
      method: "GET",
      verb: "get",
      type,
      namespace: ns,
      name,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
  }

  /** One page (or the whole list without `limit`). */
  async list<T extends KubeObject = KubeObject>(
    type: ResourceType,
    opts: ListOptions = {},
  ): Promise<ObjectList<T>> {
    const query: Record<string, string | undefined> = {
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      limit: opts.limit !== undefined ? String(opts.limit) : undefined,
      continue: opts.continue,
      resourceVersion: opts.resourceVersion,
      resourceVersionMatch: opts.resourceVersionMatch,
    };
    const raw = await this.call<unknown>({
      method: "GET",
      verb: "list",
      type,
      namespace: type.namespaced ? opts.namespace : undefined,
      query,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? Math.max(this.timeoutMs, 60_000),
    });
    if (!isRecord(raw)) throw new Error(`list ${type.plural}: unexpected answer`);
    const meta = isRecord(raw.metadata) ? raw.metadata : {};
    const items = Array.isArray(raw.items) ? (raw.items as T[]) : [];
    // List items carry no apiVersion/kind; fill them in so objects look the same as from get/watch.
    const apiVersion = apiVersionOf(type);
    for (const item of items) {
      if (item.apiVersion === undefined) item.apiVersion = apiVersion;
      if (item.kind === undefined) item.kind = type.kind;
    }
    const out: ObjectList<T> = {
      items,
      resourceVersion: typeof meta.resourceVersion === "string" ? meta.resourceVersion : "",
    };
    if (typeof meta.continue === "string" && meta.continue !== "") out.continue = meta.continue;
    if (typeof meta.remainingItemCount === "number") out.remainingItemCount = meta.remainingItemCount;
    return out;
  }

  /**
   * Every object, page by page. If the continue token expires (410) the list restarts without paging,
   * like client-go's pager. The answer's resourceVersion is that of the (consistent) snapshot.
   */
  async listAll<T extends KubeObject = KubeObject>(
    type: ResourceType,
    opts: ListAllOptions<T> = {},
  ): Promise<ObjectList<T>> {
    const pageSize = opts.pageSize ?? 500;
    const items: T[] = [];
    let cont: string | undefined;
    let rv = "";
    for (;;) {
      let page: ObjectList<T>;
      try {
        page = await this.list<T>(type, { ...opts, limit: pageSize, continue: cont });
      } catch (err) {
        if (cont !== undefined && isGone(err)) {
          this.logger.info("list continue token expired; listing without paging", { resource: type.plural });
          const whole = await this.list<T>(type, { ...opts });
          const transform = opts.transform;
          return transform ? { ...whole, items: whole.items.map((i) => transform(i)) } : whole;
        }
        throw err;
      }
      const transform = opts.transform;
      for (const item of page.items) items.push(transform ? transform(item) : item);
      if (cont === undefined) rv = page.resourceVersion;
      if (!page.continue) break;
      cont = page.continue;
    }
    return { items, resourceVersion: rv };
  }

  async create<T extends KubeObject = KubeObject>(
    type: ResourceType,
    obj: T,
    opts: WriteOptions = {},
  ): Promise<T> {
    const ns = this.requireNamespace(type, opts.namespace ?? obj.metadata.namespace);
    return this.call<T>({
      method: "POST",
      verb: "create",
      type,
      namespace: ns,
      query: writeQuery(opts),
      body: withTypeMeta(type, obj),
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
  }

  /** PUT; `obj.metadata.resourceVersion` (if set) makes it conditional (409 on conflict). */
  async update<T extends KubeObject = KubeObject>(
    type: ResourceType,
    obj: T,
    opts: WriteOptions = {},
  ): Promise<T> {
    return this.put(type, obj, undefined, opts);
  }

  /** PUT to the /status subresource. */
  async updateStatus<T extends KubeObject = KubeObject>(
    type: ResourceType,
    obj: T,
    opts: WriteOptions = {},
  ): Promise<T> {
    return this.put(type, obj, "status", opts);
  }

  async patch<T extends KubeObject = KubeObject>(
    type: ResourceType,
    name: string,
    patch: unknown,
    opts: PatchOptions = {},
  ): Promise<T> {
    return this.doPatch<T>(type, name, patch, undefined, opts);
  }

  async patchStatus<T extends KubeObject = KubeObject>(
    type: ResourceType,
    name: string,
    patch: unknown,
    opts: PatchOptions = {},
  ): Promise<T> {
    return this.doPatch<T>(type, name, patch, "status", opts);
  }

  /** Server-side apply of a whole object (name and namespace from its metadata). */
  async apply<T extends KubeObject = KubeObject>(
    type: ResourceType,
    obj: T,
    opts: Omit<PatchOptions, "patchType"> & { fieldManager: string },
  ): Promise<T> {
    const name = obj.metadata.name;
    if (!name) throw new Error("apply: metadata.name is required");
    return this.doPatch<T>(type, name, withTypeMeta(type, obj), undefined, {
      ...opts,
      namespace: opts.namespace ?? obj.metadata.namespace,
      patchType: "apply",
    });
  }

  /**
   * Deletes an object. Returns the object when the server answers with it (e.g. it still has finalizers),
   * undefined when it answers with a Status.
   */
  async delete<T extends KubeObject = KubeObject>(
    type: ResourceType,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<T | undefined> {
    const ns = this.requireNamespace(type, opts.namespace);
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.dryRun) body.dryRun = ["All"];
    const res = await this.call<unknown>({
      method: "DELETE",
      verb: "delete",
      type,
      namespace: ns,
      name,
      body,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
    if (isRecord(res) && res.kind !== "Status" && isRecord(res.metadata)) return res as unknown as T;
    return undefined;
  }

  /**
   * Watches a resource; yields events until the server closes the stream (end of the iteration), the
   * signal aborts (end), or an error (thrown; a non-200 answer is an ApiError, e.g. 410). ERROR events
   * (e.g. 410 "too old resource version") are yielded as they come.
   */
  async *watch<T extends KubeObject = KubeObject>(
    type: ResourceType,
    opts: WatchOptions = {},
    signal?: AbortSignal,
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const query: Record<string, string | undefined> = {
      watch: "1",
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: opts.allowWatchBookmarks ? "true" : undefined,
      timeoutSeconds: opts.timeoutSeconds !== undefined ? String(opts.timeoutSeconds) : undefined,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
    };
    if (signal?.aborted) return;
    let res: KubeResponse;
    try {
      res = await this.send({
        method: "GET",
        path: this.resourcePath(type, type.namespaced ? opts.namespace : undefined) + queryString(query),
        headers: { Accept: "application/json" },
        verb: "watch",
        resource: type.plural,
        namespace: opts.namespace,
        watch: true,
        timeoutMs: this.timeoutMs,
        signal,
      });
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    if (res.status !== 200 || !res.stream) {
      res.stream?.destroy();
      throw this.errorFrom(res, "watch", type.plural);
    }
    const stream = res.stream;
    const idleMs =
      opts.idleTimeoutMs ?? (opts.timeoutSeconds !== undefined ? (opts.timeoutSeconds + 60) * 1000 : 360_000);
    const idle = setTimeout(() => {
      stream.destroy(new RequestTimeoutError(`watch ${type.plural}: no data for ${idleMs} ms`, idleMs));
    }, idleMs);
    // Streams made up by hooks have no socket tied to the signal: end them on abort here too.
    const onAbort = () => stream.destroy();
    signal?.addEventListener("abort", onAbort, { once: true });
    const decoder = new LineDecoder();
    try {
      for await (const chunk of stream) {
        idle.refresh();
        for (const line of decoder.push(chunk as Buffer)) yield parseWatchEvent<T>(line);
      }
      for (const line of decoder.end()) yield parseWatchEvent<T>(line);
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener("abort", onAbort);
      stream.destroy();
    }
  }

  /** A raw request (e.g. `/readyz`, discovery). Answers are decoded as JSON when possible. */
  async raw(
    method: HttpMethod,
    path: string,
    opts: RequestOptions & { body?: unknown; contentType?: string } = {},
  ): Promise<{ status: number; body: unknown; text: string }> {
    const headers: Record<string, string> = { Accept: "application/json, */*" };
    let body: Buffer | undefined;
    if (opts.body !== undefined) {
      body = Buffer.from(typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body));
      headers["Content-Type"] = opts.contentType ?? "application/json";
    }
    const res = await this.send({
      method,
      path,
      headers,
      body,
      verb: "raw",
      resource: "",
      watch: false,
      timeoutMs: opts.timeoutMs ?? this.timeoutMs,
      signal: opts.signal,
    });
    const text = res.body?.toString("utf8") ?? "";
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed, text };
  }

  // -------------------------------------------------------------------------------------------------------
  // Internals

  /** The URL path of a collection or object. */
  resourcePath(type: ResourceType, namespace?: string, name?: string, subresource?: string): string {
    let p = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
    if (type.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
    p += `/${type.plural}`;
    if (name !== undefined) {
      if (name === "") throw new Error(`${type.kind}: empty name`);
      p += `/${encodeURIComponent(name)}`;
    }
    if (subresource) p += `/${subresource}`;
    return p;
  }

  private requireNamespace(type: ResourceType, namespace: string | undefined): string | undefined {
    if (!type.namespaced) return undefined;
    if (!namespace) throw new Error(`${type.kind} is namespaced: a namespace is required`);
    return namespace;
  }

  private async put<T extends KubeObject>(
    type: ResourceType,
    obj: T,
    subresource: string | undefined,
    opts: WriteOptions,
  ): Promise<T> {
    const name = obj.metadata.name;
    if (!name) throw new Error("update: metadata.name is required");
    const ns = this.requireNamespace(type, opts.namespace ?? obj.metadata.namespace);
    return this.call<T>({
      method: "PUT",
      verb: "update",
      type,
      namespace: ns,
      name,
      subresource,
      query: writeQuery(opts),
      body: withTypeMeta(type, obj),
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
  }

  private async doPatch<T extends KubeObject>(
    type: ResourceType,
    name: string,
    patch: unknown,
    subresource: string | undefined,
    opts: PatchOptions,
  ): Promise<T> {
    const ns = this.requireNamespace(type, opts.namespace);
    const patchType = opts.patchType ?? "merge";
    const query = writeQuery(opts);
    if (patchType === "apply") {
      if (!opts.fieldManager) throw new Error("server-side apply needs a fieldManager");
      if (opts.force) query.force = "true";
    }
    return this.call<T>({
      method: "PATCH",
      verb: "patch",
      type,
      namespace: ns,
      name,
      subresource,
      query,
      body: patch,
      contentType: CONTENT_TYPES[patchType],
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
  }

  private async call<T>(c: {
    method: HttpMethod;
    verb: string;
    type: ResourceType;
    namespace?: string;
    name?: string;
    subresource?: string;
    query?: Record<string, string | undefined>;
    body?: unknown;
    contentType?: string;
    signal?: AbortSignal;
    timeoutMs?: number;
  }): Promise<T> {
    const resource = c.subresource ? `${c.type.plural}/${c.subresource}` : c.type.plural;
    const headers: Record<string, string> = { Accept: "application/json" };
    let body: Buffer | undefined;
    if (c.body !== undefined) {
      body = Buffer.from(typeof c.body === "string" ? c.body : JSON.stringify(c.body), "utf8");
      headers["Content-Type"] = c.contentType ?? "application/json";
    }
    const req: KubeRequest = {
      method: c.method,
      path: this.resourcePath(c.type, c.namespace, c.name, c.subresource) + queryString(c.query ?? {}),
      headers,
      body,
      verb: c.verb,
      resource,
      namespace: c.namespace,
      name: c.name,
      watch: false,
      timeoutMs: c.timeoutMs ?? this.timeoutMs,
      signal: c.signal,
    };
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(req);
      if (res.status >= 200 && res.status < 300) {
        if (!res.body || res.body.length === 0) return undefined as T;
        return JSON.parse(res.body.toString("utf8")) as T;
      }
      const err = this.errorFrom(res, c.verb, resource);
      if (res.status === 429 && attempt < this.maxRetries429 && !c.signal?.aborted) {
        const header = Number(res.headers["retry-after"]);
        const secs = err.details?.retryAfterSeconds ?? (Number.isFinite(header) ? header : 1);
        await sleep(Math.min(Math.max(secs, 1), 10) * 1000, c.signal);
        continue;
      }
      throw err;
    }
  }

  private errorFrom(res: KubeResponse, verb: string, resource: string): ApiError {
    const text = res.body?.toString("utf8") ?? "";
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (isRecord(parsed) && parsed.kind === "Status") {
      const s = parsed as unknown as Status;
      return new ApiError({
        status: res.status,
        reason: s.reason,
        message: s.message,
        details: s.details,
        body: s,
        verb,
        resource,
      });
    }
    return new ApiError({
      status: res.status,
      message: text ? `${REASON_BY_CODE[res.status] ?? "Error"}: ${text.slice(0, 500)}` : undefined,
      body: parsed ?? text,
      verb,
      resource,
    });
  }

  /** Runs the hooks (last added outermost), then the HTTP transport. */
  private send(req: KubeRequest): Promise<KubeResponse> {
    let handler: RequestHandler = (r) => this.transport(r);
    for (const hook of this.hooks) {
      const next = handler;
      handler = (r) => hook(r, next);
    }
    return handler(req);
  }

  private async authState(): Promise<AuthState> {
    const now = Date.now();
    if (this.auth && now < this.auth.expires) return this.auth;
    if (!this.authPending) {
      this.authPending = this.loadAuth().finally(() => {
        this.authPending = undefined;
      });
    }
    return this.authPending;
  }

  private async loadAuth(): Promise<AuthState> {
    const opts: https.RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const headers = headerRecord(opts.headers);
    if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    const tls = {
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      pfx: opts.pfx,
      passphrase: opts.passphrase,
      rejectUnauthorized: opts.rejectUnauthorized,
      servername: opts.servername,
    };
    const key = [tls.ca, tls.cert, tls.key, tls.pfx, tls.passphrase, tls.rejectUnauthorized, tls.servername]
      .map(tlsFingerprint)
      .join("|");
    let agent = this.auth?.agent;
    let watchAgent = this.auth?.watchAgent;
    if (!agent || !watchAgent || key !== this.tlsKey) {
      const isHttps = this.server.protocol === "https:";
      // `timeout` closes idle pooled sockets before the server would, so a request rarely meets a socket
      // the server is closing at that moment (watch sockets are never idle, and get none).
      const make = (maxSockets: number, maxFreeSockets: number, timeout?: number): http.Agent => {
        const base = { keepAlive: true, keepAliveMsecs: 30_000, maxSockets, maxFreeSockets, timeout };
        const a: http.Agent = isHttps
          ? new https.Agent({
              ...base,
              scheduling: "lifo",
              ...Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)),
            })
          : new http.Agent({ ...base, scheduling: "lifo" });
        this.agents.push(a);
        return a;
      };
      // Old agents keep serving their in-flight requests; their idle sockets close by themselves.
      agent = make(this.maxSockets, 32, 30_000);
      watchAgent = make(Number.POSITIVE_INFINITY, 4);
      this.tlsKey = key;
    }
    const state: AuthState = { headers, agent, watchAgent, expires: Date.now() + AUTH_CACHE_MS };
    this.auth = state;
    return state;
  }

  private async transport(req: KubeRequest): Promise<KubeResponse> {
    const started = performance.now();
    const labels = { verb: req.verb, resource: req.resource || "raw" };
    try {
      let res: KubeResponse;
      try {
        res = await this.httpRequest(req);
      } catch (err) {
        // A pooled socket the server closed just then: reads are safe to send once more.
        if (!(err instanceof ReusedSocketError)) throw err;
        if (req.method !== "GET" || req.watch) throw err.cause;
        res = await this.httpRequest(req).catch((e: unknown) => {
          throw e instanceof ReusedSocketError ? e.cause : e;
        });
      }
      this.metrics.restRequests.inc({ ...labels, code: String(res.status) });
      if (res.status === 401) this.auth = undefined; // credentials may have rotated
      return res;
    } catch (err) {
      this.metrics.restRequests.inc({ ...labels, code: "<error>" });
      throw err;
    } finally {
      this.metrics.restRequestDuration.observe(labels, (performance.now() - started) / 1000);
    }
  }

  private async httpRequest(req: KubeRequest): Promise<KubeResponse> {
    if (req.signal?.aborted) throw req.signal.reason;
    const auth = await this.authState();
    const isHttps = this.server.protocol === "https:";
    const headers: Record<string, string> = {
      ...auth.headers,
      "User-Agent": this.userAgent,
      ...req.headers,
    };
    if (req.body) headers["Content-Length"] = String(req.body.length);
    const hostname = this.server.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = this.server.port ? Number(this.server.port) : isHttps ? 443 : 80;
    const mod = isHttps ? https : http;
    return new Promise<KubeResponse>((resolve, reject) => {
      let settled = false;
      const r = mod.request({
        hostname,
        port,
        method: req.method,
        path: this.basePath + req.path,
        headers,
        agent: req.watch ? auth.watchAgent : auth.agent,
      });
      const cleanup = () => {
        clearTimeout(timer);
        req.signal?.removeEventListener("abort", onAbort);
      };
      // The first cause wins: a timeout or abort also makes the socket report a generic error.
      let cause: unknown;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(cause ?? err);
      };
      const onAbort = () => {
        cause ??= req.signal?.reason instanceof Error ? req.signal.reason : new Error("aborted");
        r.destroy(cause instanceof Error ? cause : undefined);
      };
      const timer = setTimeout(() => {
        cause ??= new RequestTimeoutError(
          `${req.verb} ${req.resource || req.path}: no answer within ${req.timeoutMs} ms`,
          req.timeoutMs,
        );
        r.destroy(cause instanceof Error ? cause : undefined);
      }, req.timeoutMs);
      req.signal?.addEventListener("abort", onAbort, { once: true });
      if (req.signal?.aborted) onAbort();
      let answered = false;
      r.on("error", (err: Error & { code?: string }) => {
        const reset = err.code === "ECONNRESET" || err.code === "EPIPE";
        if (!answered && cause === undefined && r.reusedSocket && reset) fail(new ReusedSocketError(err));
        else fail(err);
      });
      r.on("response", (res) => {
        answered = true;
        const status = res.statusCode ?? 0;
        if (req.watch && status === 200) {
          clearTimeout(timer);
          settled = true;
          // The signal listener stays until the stream closes, so an abort ends the stream.
          res.on("close", () => req.signal?.removeEventListener("abort", onAbort));
          resolve({ status, headers: res.headers, stream: res });
          return;
        }
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", fail);
        res.on("aborted", () => fail(new Error("connection closed before the answer was complete")));
        res.on("end", () => {
          if (settled) return;
          settled = true;
          cleanup();
          resolve({ status, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      r.end(req.body);
    });
  }
}

/** A request failed on a reused keep-alive socket before any answer (the server had closed it). */
class ReusedSocketError extends Error {
  override readonly name = "ReusedSocketError";
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

function writeQuery(opts: WriteOptions): Record<string, string | undefined> {
  return {
    fieldManager: opts.fieldManager,
    dryRun: opts.dryRun ? "All" : undefined,
    fieldValidation: opts.fieldValidation,
  };
}

function queryString(q: Record<string, string | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length > 0 ? `?${parts.join("&")}` : "";
}

function withTypeMeta<T extends KubeObject>(type: ResourceType, obj: T): T {
  if (obj.apiVersion && obj.kind) return obj;
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(type), kind: obj.kind ?? type.kind };
}
