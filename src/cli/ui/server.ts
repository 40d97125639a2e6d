// The UI's HTTP server: the page's static files, two JSON reads and a server-sent event stream that
// names the ranges that changed (the page then reads what it shows again). GET and HEAD only;
// requests whose Host is not this server's address are refused, so no other web site can read the
// cluster through it (DNS rebinding).

import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClusterState } from "./cluster-state.ts";

/** src/cli/ui/static from here, in the sources (src/cli/ui) and in the build (dist/cli/ui) alike. */
export const STATIC_DIR = fileURLToPath(new URL("../../../src/cli/ui/static/", import.meta.url));

const STATIC_FILES: Record<string, string> = {
  "/": "index.html",
  "/app.js": "app.js",
  "/list.js": "list.js",
  "/map.js": "map.js",
  "/format.js": "format.js",
  "/holders.js": "holders.js",
  "/style.css": "style.css",
  "/favicon.svg": "favicon.svg",
};

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

const HEADERS = {
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

/** Keeps idle proxies and browsers from closing the event stream. */
const HEARTBEAT_MS = 15_000;

export interface UiServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { ...HEADERS, "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, data: unknown): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(data));
}

function events(state: ClusterState, req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { ...HEADERS, "Content-Type": "text/event-stream", Connection: "keep-alive" });
  res.write("retry: 1000\n\n");
  const unsubscribe = state.subscribe((keys) =>
    res.write(`event: change\ndata: ${JSON.stringify(keys)}\n\n`),
  );
  const heartbeat = setInterval(() => res.write(": heartbeat\n\n"), HEARTBEAT_MS);
  req.on("close", () => {
    clearInterval(heartbeat);
    unsubscribe();
  });
}

async function handle(
  state: ClusterState,
  allowedHosts: Set<string> | undefined,
  req: IncomingMessage,
  res: ServerResponse,
) {
  if (allowedHosts && !allowedHosts.has((req.headers.host ?? "").toLowerCase())) {
    send(res, 421, "text/plain; charset=utf-8", "unknown host: open the address kubectl ipam ui printed\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    send(res, 405, "text/plain; charset=utf-8", "read-only: GET and HEAD only\n");
    return;
  }
  const url = new URL(req.url ?? "/", "http://ui.invalid");
  if (url.pathname === "/api/events") return events(state, req, res);
  if (url.pathname === "/api/ranges") {
    return sendJson(res, 200, { ranges: state.summaries(), warnings: [...state.warnings.values()] });
  }
  if (url.pathname === "/api/range") {
    const result = state.view(
      url.searchParams.get("range") ?? "",
      url.searchParams.get("block") ?? undefined,
    );
    if (!result.ok) return sendJson(res, result.status, { error: result.message });
    return sendJson(res, 200, { ...result.view, warnings: [...state.warnings.values()] });
  }
  if (url.pathname === "/favicon.ico") return send(res, 204, "text/plain; charset=utf-8", "");
  const file = STATIC_FILES[url.pathname];
  if (!file) return send(res, 404, "text/plain; charset=utf-8", "not found\n");
  send(res, 200, TYPES[extname(file)] ?? "application/octet-stream", await readFile(`${STATIC_DIR}${file}`));
}

export function isLoopback(address: string): boolean {
  return address === "localhost" || address === "::1" || /^127\.\d+\.\d+\.\d+$/.test(address);
}

/**
 * The Host headers a loopback server answers (its own address, localhost). A server on another
 * address was exposed on purpose (`--address`) and answers any name it is reached by.
 */
function hostsFor(address: string, port: number): Set<string> | undefined {
  if (!isLoopback(address)) return undefined;
  return new Set([`${address}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]);
}

/** Serves the UI on `address:port` (port 0: a free one). */
export async function startServer(state: ClusterState, address: string, port: number): Promise<UiServer> {
  let allowedHosts: Set<string> | undefined = new Set<string>();
  const server = createServer((req, res) => {
    handle(state, allowedHosts, req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", `${String(error)}\n`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  allowedHosts = hostsFor(address, bound);
  const host = address.includes(":") ? `[${address}]` : address;
  return {
    server,
    url: `http://${host}:${bound}/`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
