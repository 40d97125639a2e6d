import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Counter } from "prom-client";
import { HealthChecks, HealthServer, parseBindAddress } from "../../src/runtime/health-server.ts";
import { createRegistry } from "../../src/runtime/metrics.ts";

describe("bind addresses", () => {
  it("parses the controller-runtime forms", () => {
    assert.deepEqual(parseBindAddress(":8080"), { host: undefined, port: 8080 });
    assert.deepEqual(parseBindAddress("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
    assert.deepEqual(parseBindAddress("[::1]:9090"), { host: "::1", port: 9090 });
    assert.deepEqual(parseBindAddress("8081"), { host: undefined, port: 8081 });
    assert.equal(parseBindAddress("0"), undefined);
    assert.equal(parseBindAddress(""), undefined);
    assert.throws(() => parseBindAddress("localhost"));
    assert.throws(() => parseBindAddress("host:99999"));
  });
});

describe("HealthServer", () => {
  const servers: HealthServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it("serves /metrics, /healthz and /readyz with pluggable checks", async () => {
    const registry = createRegistry();
    const c = new Counter({ name: "my_things_total", help: "things", registers: [registry] });
    c.inc(3);
    const checks = new HealthChecks();
    let ready: boolean | string = "informers not synced";
    checks.addReadyzCheck("informers", () => ready);
    checks.addHealthzCheck("throws", () => {
      throw new Error("broken");
    });
    const s = new HealthServer({ bindAddress: "127.0.0.1:0", registry, checks });
    servers.push(s);
    const port = await s.start();
    assert.ok(port !== undefined && port > 0);
    const base = `http://127.0.0.1:${port}`;

    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /my_things_total 3/);

    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 500);
    assert.match(await notReady.text(), /\[-\]informers failed: informers not synced/);
    ready = true;
    const isReady = await fetch(`${base}/readyz`);
    assert.equal(isReady.status, 200);
    assert.equal(await isReady.text(), "ok");
    const verbose = await (await fetch(`${base}/readyz?verbose`)).text();
    assert.match(verbose, /\[\+\]ping ok/);
    assert.match(verbose, /\[\+\]informers ok/);

    const one = await fetch(`${base}/readyz/informers`);
    assert.equal(one.status, 200);
    await one.text();
    const missing = await fetch(`${base}/readyz/nope`);
    assert.equal(missing.status, 404);
    await missing.text();

    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 500);
    assert.match(await health.text(), /\[-\]throws failed: broken/);
    const ping = await fetch(`${base}/healthz/ping`);
    assert.equal(ping.status, 200);
    await ping.text();

    const notFound = await fetch(`${base}/other`);
    assert.equal(notFound.status, 404);
    await notFound.text();
  });

  it("is disabled by the address 0", async () => {
    const s = new HealthServer({ bindAddress: "0", checks: new HealthChecks() });
    assert.equal(await s.start(), undefined);
    await s.stop();
  });
});
