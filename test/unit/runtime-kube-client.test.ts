// KubeClient against a small local HTTP server: watch stream framing, error decoding, 429 retries,
// timeouts and aborts (the real API server is used in test/integration/runtime-kube.test.ts).
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import {
  ApiError,
  CoreTypes,
  isAbortError,
  isNotFound,
  KubeClient,
  type KubeObject,
  RequestTimeoutError,
  type WatchEvent,
} from "../../src/runtime/kube.ts";
import { createRegistry } from "../../src/runtime/metrics.ts";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
let server: http.Server;
let client: KubeClient;

before(async () => {
  server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "local", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "secret-token" }],
    contexts: [{ name: "c", cluster: "local", user: "u" }],
    currentContext: "c",
  });
  client = new KubeClient(kc, { registry: createRegistry(), timeoutMs: 2_000 });
});

after(async () => {
  client.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("KubeClient over HTTP", () => {
  it("sends the bearer token and decodes objects", async () => {
    let auth: string | undefined;
    let path: string | undefined;
    handler = (req, res) => {
      auth = req.headers.authorization;
      path = req.url;
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "ns" } }),
      );
    };
    const cm = await client.get(CoreTypes.configMap, "a", { namespace: "ns" });
    assert.equal(cm.metadata.name, "a");
    assert.equal(auth, "Bearer secret-token");
    assert.equal(path, "/api/v1/namespaces/ns/configmaps/a");
  });

  it("decodes Status errors and plain-text errors", async () => {
    handler = (_req, res) => {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "Status",
          code: 404,
          reason: "NotFound",
          message: 'configmaps "a" not found',
        }),
      );
    };
    const nf = await client.get(CoreTypes.configMap, "a", { namespace: "ns" }).catch((e: unknown) => e);
    assert.equal(isNotFound(nf), true);
    assert.ok(nf instanceof ApiError);
    assert.equal(nf.message, 'configmaps "a" not found');
    handler = (_req, res) => {
      res.writeHead(503, { "Content-Type": "text/plain" });
      res.end("upstream unavailable");
    };
    const unavailable = await client
      .get(CoreTypes.configMap, "a", { namespace: "ns" })
      .catch((e: unknown) => e);
    assert.ok(unavailable instanceof ApiError);
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.reason, "ServiceUnavailable");
    assert.match(unavailable.message, /upstream unavailable/);
  });

  it("retries 429 Too Many Requests after Retry-After", async () => {
    let calls = 0;
    handler = (_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "1" });
        res.end(JSON.stringify({ kind: "Status", code: 429, reason: "TooManyRequests" }));
        return;
      }
      res.writeHead(201, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ metadata: { name: "b", namespace: "ns" } }));
    };
    const created = await client.create(CoreTypes.configMap, { metadata: { name: "b", namespace: "ns" } });
    assert.equal(created.metadata.name, "b");
    assert.equal(calls, 2);
  });

  it("streams watch events split at arbitrary byte boundaries", async () => {
    const lines = [
      { type: "ADDED", object: { metadata: { name: "ä-1", resourceVersion: "1" } } },
      {
        type: "MODIFIED",
        object: { metadata: { name: "ü-2", resourceVersion: "2" }, data: { k: "🚀".repeat(50) } },
      },
      { type: "BOOKMARK", object: { metadata: { resourceVersion: "3" } } },
      { type: "DELETED", object: { metadata: { name: "x", resourceVersion: "4" } } },
    ];
    const bytes = Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
    let query: URLSearchParams | undefined;
    handler = (req, res) => {
      query = new URL(req.url ?? "", "http://x").searchParams;
      res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
      let i = 0;
      const step = () => {
        if (i >= bytes.length) {
          res.end();
          return;
        }
        const n = 1 + (i % 13);
        res.write(bytes.subarray(i, i + n));
        i += n;
        setImmediate(step);
      };
      step();
    };
    const got: WatchEvent<KubeObject>[] = [];
    for await (const ev of client.watch(CoreTypes.configMap, {
      namespace: "ns",
      resourceVersion: "0",
      allowWatchBookmarks: true,
      timeoutSeconds: 30,
    })) {
      got.push(ev);
    }
    assert.deepEqual(
      got.map((e) => [e.type, e.type === "ERROR" ? "" : e.object.metadata.name]),
      [
        ["ADDED", "ä-1"],
        ["MODIFIED", "ü-2"],
        ["BOOKMARK", undefined],
        ["DELETED", "x"],
      ],
    );
    assert.equal(query?.get("watch"), "1");
    assert.equal(query?.get("allowWatchBookmarks"), "true");
    assert.equal(query?.get("resourceVersion"), "0");
    assert.equal(query?.get("timeoutSeconds"), "30");
  });

  it("a watch answered with an error status throws an ApiError", async () => {
    handler = (_req, res) => {
      res.writeHead(410, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", code: 410, reason: "Expired", message: "too old" }));
    };
    const it = client.watch(CoreTypes.configMap, { resourceVersion: "1" });
    const err = await it.next().catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 410);
  });

  it("times out requests without an answer, and aborts on a signal", async () => {
    const pending: http.ServerResponse[] = [];
    handler = (_req, res) => {
      pending.push(res);
    };
    const timedOut = await client
      .get(CoreTypes.configMap, "slow", { namespace: "ns", timeoutMs: 50 })
      .catch((e: unknown) => e);
    assert.ok(timedOut instanceof RequestTimeoutError);

    const ac = new AbortController();
    const p = client.get(CoreTypes.configMap, "slow", { namespace: "ns", signal: ac.signal });
    ac.abort();
    const aborted = await p.catch((e: unknown) => e);
    assert.equal(isAbortError(aborted), true);

    // A watch ends quietly when its signal aborts.
    const wac = new AbortController();
    handler = (_req, res) => {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.write(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "w" } } })}\n`);
      pending.push(res);
    };
    const seen: string[] = [];
    for await (const ev of client.watch(CoreTypes.configMap, {}, wac.signal)) {
      if (ev.type !== "ERROR") seen.push(ev.object.metadata.name ?? "");
      wac.abort();
    }
    assert.deepEqual(seen, ["w"]);
    for (const r of pending) r.destroy();
  });
});
