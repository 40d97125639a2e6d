// From operations to HTTP requests: resource paths, query strings, type metadata, and the pipeline
// every request goes through (hooks around the transport; JSON answers decoded, 429 retried).

import { sleep } from "../util.ts";
import { apiErrorFromAnswer } from "./errors.ts";
import { apiVersionOf, type KubeObject, type ResourceType } from "./meta.ts";
import type { RawRequestOptions, WriteOptions } from "./options.ts";
import type {
  HttpMethod,
  HttpTransport,
  KubeRequest,
  KubeResponse,
  RequestHandler,
  RequestHook,
} from "./transport.ts";

/** The URL path of a collection or object. */
export function resourcePath(
  type: ResourceType,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
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

export function requireNamespace(type: ResourceType, namespace: string | undefined): string | undefined {
  if (!type.namespaced) return undefined;
  if (!namespace) throw new Error(`${type.kind} is namespaced: a namespace is required`);
  return namespace;
}

export function writeQuery(opts: WriteOptions): Record<string, string | undefined> {
  return {
    fieldManager: opts.fieldManager,
    dryRun: opts.dryRun ? "All" : undefined,
    fieldValidation: opts.fieldValidation,
  };
}

export function queryString(q: Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length > 0 ? `?${parts.join("&")}` : "";
}

export function withTypeMeta<T extends KubeObject>(type: ResourceType, obj: T): T {
  if (obj.apiVersion && obj.kind) return obj;
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(type), kind: obj.kind ?? type.kind };
}

/** One request for a resource, before it becomes HTTP. */
export interface CallSpec {
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
}

export class RequestPipeline {
  constructor(
    private readonly transport: HttpTransport,
    private readonly hooks: RequestHook[],
    private readonly timeoutMs: number,
    private readonly maxRetries429: number,
  ) {}

  /** Adds a hook (outermost). Returns a function that removes it. */
  use(hook: RequestHook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /** A JSON request for one resource; 2xx answers are decoded, 429 retried, others thrown as ApiError. */
  async call<T>(c: CallSpec): Promise<T> {
    const resource = c.subresource ? `${c.type.plural}/${c.subresource}` : c.type.plural;
    const headers: Record<string, string> = { Accept: "application/json" };
    let body: Buffer | undefined;
    if (c.body !== undefined) {
      body = Buffer.from(typeof c.body === "string" ? c.body : JSON.stringify(c.body), "utf8");
      headers["Content-Type"] = c.contentType ?? "application/json";
    }
    const req: KubeRequest = {
      method: c.method,
      path: resourcePath(c.type, c.namespace, c.name, c.subresource) + queryString(c.query ?? {}),
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
      const err = apiErrorFromAnswer(res.status, res.body?.toString("utf8") ?? "", c.verb, resource);
      if (res.status === 429 && attempt < this.maxRetries429 && !c.signal?.aborted) {
        const header = Number(res.headers["retry-after"]);
        const secs = err.details?.retryAfterSeconds ?? (Number.isFinite(header) ? header : 1);
        if (!(await sleep(Math.min(Math.max(secs, 1), 10) * 1000, c.signal))) throw c.signal?.reason;
        continue;
      }
      throw err;
    }
  }

  /** A request at a path; any answer resolves, decoded as JSON when it is JSON. */
  async raw(
    method: HttpMethod,
    path: string,
    opts: RawRequestOptions = {},
  ): Promise<{ status: number; body: unknown; text: string }> {
    const headers: Record<string, string> = { Accept: "application/json, */*" };
    let body: Buffer | undefined;
    if (opts.body !== undefined) {
      body = Buffer.from(typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body));
      headers["Content-Type"] = opts.contentType ?? "application/json";
    }
    const query = queryString(opts.query ?? {});
    const res = await this.send({
      method,
      path: query && path.includes("?") ? `${path}&${query.slice(1)}` : path + query,
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

  /** Runs the hooks (last added outermost), then the HTTP transport. */
  send(req: KubeRequest): Promise<KubeResponse> {
    let handler: RequestHandler = (r) => this.transport.send(r);
    for (const hook of this.hooks) {
      const next = handler;
      handler = (r) => hook(r, next);
    }
    return handler(req);
  }
}
