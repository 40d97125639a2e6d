// The Kubernetes client: typed operations on any resource type (get, list and paged listAll, create,
// update, patch and server-side apply, delete, watch) and raw requests, over the HTTP transport with
// hooks around every request (metrics, fault injection). 429 answers are retried as Retry-After says.

import { discardLogger, type Logger } from "../logger.ts";
import { runtimeMetrics } from "../metrics.ts";
import type { ClusterAccess as KubeConfig } from "./cluster-access.ts";
import { apiErrorFromAnswer, isGone } from "./errors.ts";
import {
  apiVersionOf,
  isRecord,
  type KubeObject,
  type ObjectList,
  type ResourceType,
  type WatchEvent,
} from "./meta.ts";
import {
  CONTENT_TYPES,
  type DeleteOptions,
  type KubeClientOptions,
  type ListAllOptions,
  type ListOptions,
  type NamespacedOptions,
  type PatchOptions,
  type RawRequestOptions,
  type WatchOptions,
  type WriteOptions,
} from "./options.ts";
import {
  queryString,
  RequestPipeline,
  requireNamespace,
  resourcePath,
  withTypeMeta,
  writeQuery,
} from "./requests.ts";
import { type HttpMethod, HttpTransport, type KubeResponse, type RequestHook } from "./transport.ts";
import { readWatchStream } from "./watch-decoding.ts";

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly server: URL;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly http: HttpTransport;
  private readonly requests: RequestPipeline;

  constructor(kubeConfig: KubeConfig, options: KubeClientOptions = {}) {
    this.kubeConfig = kubeConfig;
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.server = new URL(cluster.server);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.logger = options.logger ?? discardLogger();
    this.http = new HttpTransport(kubeConfig, this.server, {
      maxSockets: options.maxSockets ?? 128,
      userAgent: options.userAgent ?? "kubipam/0.1.0",
      metrics: runtimeMetrics(options.registry),
    });
    const hooks = [...(options.hooks ?? [])];
    this.requests = new RequestPipeline(this.http, hooks, this.timeoutMs, options.maxRetries429 ?? 5);
  }

  /** Adds a hook (outermost). Returns a function that removes it. */
  use(hook: RequestHook): () => void {
    return this.requests.use(hook);
  }

  /** Closes pooled connections. Watches still open are destroyed. */
  close(): void {
    this.http.close();
  }

  // -------------------------------------------------------------------------------------------------------
  // Typed operations

  async get<T extends KubeObject = KubeObject>(
    type: ResourceType,
    name: string,
    opts: NamespacedOptions = {},
  ): Promise<T> {
    const ns = requireNamespace(type, opts.namespace);
    return this.requests.call<T>({
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
    const raw = await this.requests.call<unknown>({
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
    const ns = requireNamespace(type, opts.namespace ?? obj.metadata.namespace);
    return this.requests.call<T>({
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
    const ns = requireNamespace(type, opts.namespace);
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.preconditions) body.preconditions = opts.preconditions;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.dryRun) body.dryRun = ["All"];
    const res = await this.requests.call<unknown>({
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
      res = await this.requests.send({
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
      throw apiErrorFromAnswer(res.status, res.body?.toString("utf8") ?? "", "watch", type.plural);
    }
    const idleMs =
      opts.idleTimeoutMs ?? (opts.timeoutSeconds !== undefined ? (opts.timeoutSeconds + 60) * 1000 : 360_000);
    yield* readWatchStream<T>(res.stream, { what: `watch ${type.plural}`, idleMs, signal });
  }

  /** A raw request (e.g. `/readyz`, discovery). Answers are decoded as JSON when possible. */
  raw(
    method: HttpMethod,
    path: string,
    opts: RawRequestOptions = {},
  ): Promise<{ status: number; body: unknown; text: string }> {
    return this.requests.raw(method, path, opts);
  }

  /**
   * A JSON request at a path, for what has no typed operation (subresources such as a ServiceAccount's
   * `token`, `/version`, discovery): resolves with a 2xx answer's body, throws ApiError otherwise.
   */
  async request<T = unknown>(method: HttpMethod, path: string, opts: RawRequestOptions = {}): Promise<T> {
    const answer = await this.requests.raw(method, path, opts);
    if (answer.status >= 200 && answer.status < 300) return answer.body as T;
    throw apiErrorFromAnswer(answer.status, answer.text, method.toLowerCase(), path);
  }

  // -------------------------------------------------------------------------------------------------------
  // Internals

  /** The URL path of a collection or object. */
  resourcePath(type: ResourceType, namespace?: string, name?: string, subresource?: string): string {
    return resourcePath(type, namespace, name, subresource);
  }

  private async put<T extends KubeObject>(
    type: ResourceType,
    obj: T,
    subresource: string | undefined,
    opts: WriteOptions,
  ): Promise<T> {
    const name = obj.metadata.name;
    if (!name) throw new Error("update: metadata.name is required");
    const ns = requireNamespace(type, opts.namespace ?? obj.metadata.namespace);
    return this.requests.call<T>({
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
    const ns = requireNamespace(type, opts.namespace);
    const patchType = opts.patchType ?? "merge";
    const query = writeQuery(opts);
    if (patchType === "apply") {
      if (!opts.fieldManager) throw new Error("server-side apply needs a fieldManager");
      if (opts.force) query.force = "true";
    }
    return this.requests.call<T>({
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
}
