// HTTP endpoints for probes and scraping: `/metrics` (Prometheus), `/healthz`, `/livez`, `/readyz` with
// pluggable named checks (`/readyz/<name>` for one, `?verbose` for the list, like the API server).
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { discardLogger, type Logger } from "./logger.ts";

/** Passes when it returns true/undefined; fails when it returns false or a string (the reason) or throws. */
export type HealthCheck = () => boolean | string | undefined | Promise<boolean | string | undefined>;

/** Parsed bind address; undefined means disabled. */
export interface BindAddress {
  host: string | undefined;
  port: number;
}

/**
 * `":8080"` (all interfaces), `"127.0.0.1:0"` (ephemeral port), `"[::1]:9090"`, `"8080"`; `"0"` or `""`
 * disables (like controller-runtime's `--metrics-bind-address=0`).
 */
export function parseBindAddress(address: string): BindAddress | undefined {
  const a = address.trim();
  if (a === "" || a === "0") return undefined;
  let host: string | undefined;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(a);
  if (v6) {
    host = v6[1];
    portText = v6[2] ?? "";
  } else if (/^\d+$/.test(a)) {
    portText = a;
  } else {
    const i = a.lastIndexOf(":");
    if (i < 0) throw new Error(`invalid bind address ${JSON.stringify(address)}: expected host:port`);
    host = a.slice(0, i) || undefined;
    portText = a.slice(i + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new Error(`invalid port in bind address ${address}`);
  return { host, port };
}

export class HealthChecks {
  private readonly healthz = new Map<string, HealthCheck>();
  private readonly readyz = new Map<string, HealthCheck>();

  constructor() {
    this.healthz.set("ping", () => true);
    this.readyz.set("ping", () => true);
  }

  addHealthzCheck(name: string, check: HealthCheck): void {
    this.healthz.set(name, check);
  }
  addReadyzCheck(name: string, check: HealthCheck): void {
    this.readyz.set(name, check);
  }

  /** Runs the checks of a kind; `only` selects one by name. */
  async run(
    kind: "healthz" | "readyz",
    only?: string,
  ): Promise<{ ok: boolean; results: { name: string; ok: boolean; reason?: string }[] } | undefined> {
    const checks = kind === "healthz" ? this.healthz : this.readyz;
    let entries: [string, HealthCheck][];
    if (only === undefined) {
      entries = [...checks];
    } else {
      const c = checks.get(only);
      if (!c) return undefined;
      entries = [[only, c]];
    }
    const results = await Promise.all(
      entries.map(async ([name, check]) => {
        try {
          const r = await check();
          if (r === false) return { name, ok: false, reason: "check failed" };
          if (typeof r === "string") return { name, ok: false, reason: r };
          return { name, ok: true };
        } catch (err) {
          return { name, ok: false, reason: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    return { ok: results.every((r) => r.ok), results };
  }
}

export interface HealthServerOptions {
  bindAddress: string;
  /** Serve `/metrics` from this registry. */
  registry?: Registry;
  /** Serve `/healthz`, `/livez`, `/readyz` from these checks. */
  checks?: HealthChecks;
  logger?: Logger;
}

export class HealthServer {
  private readonly opts: HealthServerOptions;
  private readonly logger: Logger;
  private server: http.Server | undefined;
  private boundPort: number | undefined;

  constructor(options: HealthServerOptions) {
    this.opts = options;
    this.logger = (options.logger ?? discardLogger()).child("http");
  }

  get port(): number | undefined {
    return this.boundPort;
  }

  /** Starts listening; resolves to the bound port, or undefined when the address disables the server. */
  async start(): Promise<number | undefined> {
    const addr = parseBindAddress(this.opts.bindAddress);
    if (!addr) return undefined;
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error("request failed", { error: err, path: req.url });
        if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
        res.end("internal error\n");
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(addr.port, addr.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    this.logger.info("serving", {
      address: `${addr.host ?? ""}:${this.boundPort}`,
      metrics: this.opts.registry !== undefined,
      probes: this.opts.checks !== undefined,
    });
    return this.boundPort;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "Content-Type": "text/plain", Allow: "GET, HEAD" });
      res.end("method not allowed\n");
      return;
    }
    if (path === "/metrics" && this.opts.registry) {
      const body = await this.opts.registry.metrics();
      res.writeHead(200, { "Content-Type": this.opts.registry.contentType });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    const m = /^\/(healthz|livez|readyz)(?:\/([^/]+))?$/.exec(path);
    if (m && this.opts.checks) {
      const kind = m[1] === "readyz" ? "readyz" : "healthz";
      const outcome = await this.opts.checks.run(kind, m[2]);
      if (!outcome) {
        res.writeHead(404, { "Content-Type": "text/plain" });
        res.end(`no check named ${m[2]}\n`);
        return;
      }
      const verbose = url.searchParams.has("verbose") || !outcome.ok;
      let body = "";
      if (verbose) {
        for (const r of outcome.results)
          body += r.ok ? `[+]${r.name} ok\n` : `[-]${r.name} failed: ${r.reason}\n`;
        body += outcome.ok ? `${m[1]} check passed\n` : `${m[1]} check failed\n`;
      } else {
        body = "ok";
      }
      res.writeHead(outcome.ok ? 200 : 500, {
        "Content-Type": "text/plain; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : body);
      return;
    }
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found\n");
  }
}
