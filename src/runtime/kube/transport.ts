// The HTTP(S) transport of the Kubernetes client: credentials and TLS from the kubeconfig (re-read
// every few seconds, so rotated tokens and certificates are picked up), keep-alive connection pools
// (one for ordinary requests, one for watches), timeouts, aborts and request metrics. Hooks wrap it.

import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import type { RuntimeMetrics } from "../metrics.ts";
import type { ClusterAccess as KubeConfig } from "./cluster-access.ts";
import { RequestTimeoutError } from "./errors.ts";
import { isRecord } from "./meta.ts";

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

export interface TransportOptions {
  /** Maximum sockets of the pool for ordinary requests. Watches use their own pool. */
  maxSockets: number;
  userAgent: string;
  metrics: RuntimeMetrics;
}

export class HttpTransport {
  private readonly basePath: string;
  private auth: AuthState | undefined;
  private authPending: Promise<AuthState> | undefined;
  private tlsKey = "";
  private readonly agents: http.Agent[] = [];

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly server: URL,
    private readonly options: TransportOptions,
  ) {
    this.basePath = server.pathname.replace(/\/+$/, "");
  }

  /** Closes pooled connections. Watches still open are destroyed. */
  close(): void {
    for (const a of this.agents) a.destroy();
    this.agents.length = 0;
    this.auth = undefined;
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
      agent = make(this.options.maxSockets, 32, 30_000);
      watchAgent = make(Number.POSITIVE_INFINITY, 4);
      this.tlsKey = key;
    }
    const state: AuthState = { headers, agent, watchAgent, expires: Date.now() + AUTH_CACHE_MS };
    this.auth = state;
    return state;
  }

  /** Sends one request over the pooled connections and counts it in the client metrics. */
  async send(req: KubeRequest): Promise<KubeResponse> {
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
      this.options.metrics.restRequests.inc({ ...labels, code: String(res.status) });
      if (res.status === 401) this.auth = undefined; // credentials may have rotated
      return res;
    } catch (err) {
      this.options.metrics.restRequests.inc({ ...labels, code: "<error>" });
      throw err;
    } finally {
      this.options.metrics.restRequestDuration.observe(labels, (performance.now() - started) / 1000);
    }
  }

  private async httpRequest(req: KubeRequest): Promise<KubeResponse> {
    if (req.signal?.aborted) throw req.signal.reason;
    const auth = await this.authState();
    const isHttps = this.server.protocol === "https:";
    const headers: Record<string, string> = {
      ...auth.headers,
      "User-Agent": this.options.userAgent,
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
