// The informer against a real kube-apiserver: list + watch, handlers, store, indexes, relist after the
// watch expired (410), re-watch after the server ends a watch, retries after failed lists, and a
// compact transform.
import assert from "node:assert/strict";
import { PassThrough, type Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Informer } from "../../src/runtime/informer.ts";
import { CoreTypes, KubeClient, type KubeObject } from "../../src/runtime/kube.ts";
import { createRegistry } from "../../src/runtime/metrics.ts";
import { compactObjects, LAST_APPLIED_ANNOTATION, StringInterner } from "../../src/runtime/transforms.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

let cluster: TestCluster;
let admin: KubeClient;
const clients: KubeClient[] = [];
const informers: Informer<ConfigMap>[] = [];

before(async () => {
  cluster = await useCluster();
  admin = new KubeClient(cluster.kubeConfig, { registry: createRegistry() });
  clients.push(admin);
});

after(() => {
  for (const i of informers) i.stop();
  for (const c of clients) c.close();
});

function newClient(): KubeClient {
  const c = new KubeClient(cluster.kubeConfig, { registry: createRegistry() });
  clients.push(c);
  return c;
}

const cm = (ns: string, name: string, data: Record<string, string> = {}): ConfigMap => ({
  metadata: { name, namespace: ns },
  data,
});

function record(inf: Informer<ConfigMap>, log: string[]): void {
  inf.addEventHandler({
    onAdd: (o, initial) =>
      log.push(`add ${o.metadata.name} ${o.data?.color ?? ""}${initial ? " initial" : ""}`),
    onUpdate: (a, b) => log.push(`update ${b.metadata.name} ${a.data?.color ?? ""}>${b.data?.color ?? ""}`),
    onDelete: (o, info) => log.push(`delete ${o.metadata.name}${info.finalStateUnknown ? " unknown" : ""}`),
  });
}

describe("Informer", () => {
  it("lists, watches, keeps the store and indexes, survives throwing handlers, relists after 410", async () => {
    const ns = await cluster.createNamespace("rt-inf");
    await admin.create(CoreTypes.configMap, cm(ns, "a", { color: "green" }));
    await admin.create(CoreTypes.configMap, cm(ns, "b", { color: "green" }));

    // The informer's client lets the test hold watches and inject a 410 ERROR event.
    const client = newClient();
    let hold = false;
    let held: PassThrough | undefined;
    const real: Readable[] = [];
    client.use(async (req, next) => {
      if (!req.watch) return next(req);
      if (hold) {
        held = new PassThrough();
        return { status: 200, headers: {}, stream: held };
      }
      const res = await next(req);
      if (res.stream) real.push(res.stream);
      return res;
    });
    const registry = createRegistry();
    const inf = new Informer<ConfigMap>(client, CoreTypes.configMap, {
      namespace: ns,
      registry,
      pageSize: 1,
      backoff: { initialMs: 10, maxMs: 100 },
    });
    informers.push(inf);
    inf.addIndex("color", (o) => (o.data?.color ? [o.data.color] : []));
    const log: string[] = [];
    record(inf, log);
    inf.addEventHandler({
      onAdd: () => {
        throw new Error("handler bug");
      },
      onUpdate: async () => {
        throw new Error("async handler bug");
      },
    });
    assert.equal(inf.hasSynced(), false);
    const running = inf.start();
    assert.equal(await inf.waitForSync(AbortSignal.timeout(30_000)), true);
    assert.equal(inf.hasSynced(), true);
    assert.deepEqual(inf.keys().sort(), [`${ns}/a`, `${ns}/b`]);
    assert.deepEqual(log.sort(), ["add a green initial", "add b green initial"]);
    assert.equal(inf.get(`${ns}/a`)?.metadata.managedFields, undefined, "managedFields are dropped");
    assert.ok(inf.lastSyncResourceVersion());
    log.length = 0;

    // Watch events reach the handlers and the store.
    await admin.create(CoreTypes.configMap, cm(ns, "c", { color: "red" }));
    await admin.patch(CoreTypes.configMap, "a", { data: { color: "red" } }, { namespace: ns });
    await admin.delete(CoreTypes.configMap, "b", { namespace: ns });
    await eventually(() => assert.deepEqual(log, ["add c red", "update a green>red", "delete b"]));
    assert.deepEqual(inf.keys().sort(), [`${ns}/a`, `${ns}/c`]);
    assert.equal(inf.getByName("a", ns)?.data?.color, "red");
    assert.deepEqual(
      inf
        .byIndex("color", "red")
        .map((o) => o.metadata.name)
        .sort(),
      ["a", "c"],
    );
    assert.deepEqual(inf.byIndex("color", "green"), []);
    assert.throws(() => inf.byIndex("nope", "x"), /no index/);
    log.length = 0;

    // Break the watch and hold the next one; change things meanwhile; then expire the watch (410).
    hold = true;
    for (const s of real) s.destroy();
    await eventually(() => assert.ok(held, "the informer re-watched"));
    await admin.delete(CoreTypes.configMap, "a", { namespace: ns });
    await admin.patch(CoreTypes.configMap, "c", { data: { color: "blue" } }, { namespace: ns });
    await admin.create(CoreTypes.configMap, cm(ns, "d", { color: "blue" }));
    assert.deepEqual(log, [], "nothing seen while the watch is held");
    hold = false;
    held?.write(
      `${JSON.stringify({
        type: "ERROR",
        object: {
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          code: 410,
          reason: "Expired",
          message: "too old resource version",
        },
      })}\n`,
    );
    await eventually(() =>
      assert.deepEqual(log.sort(), ["add d blue", "delete a unknown", "update c red>blue"]),
    );
    assert.deepEqual(inf.keys().sort(), [`${ns}/c`, `${ns}/d`]);
    assert.deepEqual(inf.byIndex("color", "red"), []);
    assert.deepEqual(
      inf
        .byIndex("color", "blue")
        .map((o) => o.metadata.name)
        .sort(),
      ["c", "d"],
    );
    assert.match(await registry.metrics(), /informer_relists_total\{resource="configmaps"\} 1/);

    // And it keeps watching after the relist.
    log.length = 0;
    await admin.create(CoreTypes.configMap, cm(ns, "e"));
    await eventually(() => assert.deepEqual(log, ["add e "]));

    // A handler added late gets the existing objects as adds.
    const late: string[] = [];
    inf.onAdd((o) => {
      late.push(o.metadata.name ?? "");
    });
    assert.deepEqual(late.sort(), ["c", "d", "e"]);

    inf.stop();
    await running;
    assert.equal(await inf.waitForSync(), true);
  });

  it("re-watches from the last resourceVersion when the server ends a watch, without relisting", async () => {
    const ns = await cluster.createNamespace("rt-inf-timeout");
    const client = newClient();
    let watches = 0;
    client.use(async (req, next) => {
      if (req.watch) watches++;
      return next(req);
    });
    const registry = createRegistry();
    const inf = new Informer<ConfigMap>(client, CoreTypes.configMap, {
      namespace: ns,
      registry,
      minWatchTimeoutSeconds: 1,
    });
    informers.push(inf);
    const names = new Set<string>();
    inf.onAdd((o) => {
      names.add(o.metadata.name ?? "");
    });
    void inf.start();
    assert.equal(await inf.waitForSync(AbortSignal.timeout(30_000)), true);
    await admin.create(CoreTypes.configMap, cm(ns, "first"));
    await eventually(() => assert.ok(watches >= 3, `watches: ${watches}`), { timeoutMs: 30_000 });
    await admin.create(CoreTypes.configMap, cm(ns, "second"));
    await eventually(() => assert.deepEqual([...names].sort(), ["first", "second"]));
    assert.match(await registry.metrics(), /informer_lists_total\{resource="configmaps"\} 1\n/);
    inf.stop();
  });

  it("retries failed lists with backoff and syncs once the API answers", async () => {
    const ns = await cluster.createNamespace("rt-inf-retry");
    await admin.create(CoreTypes.configMap, cm(ns, "x"));
    const client = newClient();
    let failures = 0;
    client.use(async (req, next) => {
      if (req.verb === "list" && failures < 3) {
        failures++;
        return {
          status: 500,
          headers: {},
          body: Buffer.from(
            JSON.stringify({ kind: "Status", code: 500, reason: "InternalError", message: "injected" }),
          ),
        };
      }
      return next(req);
    });
    const warnings: string[] = [];
    const { Logger } = await import("../../src/runtime/logger.ts");
    const logger = new Logger({
      level: "warn",
      sink: (line) => {
        warnings.push(line);
      },
    });
    const inf = new Informer<ConfigMap>(client, CoreTypes.configMap, {
      namespace: ns,
      registry: createRegistry(),
      logger,
      backoff: { initialMs: 5, maxMs: 50 },
    });
    informers.push(inf);
    void inf.start();
    assert.equal(await inf.waitForSync(AbortSignal.timeout(30_000)), true);
    assert.equal(failures, 3);
    assert.deepEqual(inf.keys(), [`${ns}/x`]);
    assert.equal(warnings.length, 3, "every failure is logged");
    assert.match(warnings[0] ?? "", /list failed; retrying/);
    inf.stop();
  });

  it("waitForSync answers false when the informer stops or the signal aborts first", async () => {
    const client = newClient();
    client.use(async () => {
      throw new Error("API unreachable");
    });
    const inf = new Informer<ConfigMap>(client, CoreTypes.configMap, {
      registry: createRegistry(),
      backoff: { initialMs: 5, maxMs: 20 },
    });
    void inf.start();
    const ac = new AbortController();
    const waiting = inf.waitForSync(ac.signal);
    ac.abort();
    assert.equal(await waiting, false);
    const waiting2 = inf.waitForSync();
    inf.stop();
    assert.equal(await waiting2, false);
  });

  it("indexes one key or many per value and several values per object; a compact transform applies to lists and watch events", async () => {
    const ns = await cluster.createNamespace("rt-inf-index");
    const tagged = (name: string, tags: string) => ({
      ...cm(ns, name, { tags }),
      metadata: {
        name,
        namespace: ns,
        annotations: { [LAST_APPLIED_ANNOTATION]: "{}", note: "kept" },
      },
    });
    await admin.create(CoreTypes.configMap, tagged("a", "x,y"));
    await admin.create(CoreTypes.configMap, tagged("b", "y"));
    const interner = new StringInterner();
    const inf = new Informer<ConfigMap>(newClient(), CoreTypes.configMap, {
      namespace: ns,
      registry: createRegistry(),
      transform: compactObjects({ interner }),
    });
    informers.push(inf);
    inf.addIndex("tag", (o) => (o.data?.tags ? o.data.tags.split(",") : []));
    void inf.start();
    assert.equal(await inf.waitForSync(AbortSignal.timeout(30_000)), true);
    const names = (tag: string) =>
      inf
        .byIndex("tag", tag)
        .map((o) => o.metadata.name)
        .sort();
    assert.deepEqual(names("x"), ["a"]);
    assert.deepEqual(names("y"), ["a", "b"]);
    assert.deepEqual(inf.get(`${ns}/a`)?.metadata.annotations, { note: "kept" }, "listed objects compacted");
    assert.ok(interner.size > 0, "strings were shared");

    // y: two keys → one; x: one key → another; z: a value with the same key twice.
    await admin.patch(CoreTypes.configMap, "a", { data: { tags: "z,z" } }, { namespace: ns });
    await admin.create(CoreTypes.configMap, tagged("c", "x"));
    await eventually(() => {
      assert.deepEqual(names("x"), ["c"]);
      assert.deepEqual(names("y"), ["b"]);
      assert.deepEqual(names("z"), ["a"]);
    });
    assert.deepEqual(inf.get(`${ns}/c`)?.metadata.annotations, { note: "kept" }, "watched objects compacted");
    assert.equal(inf.get(`${ns}/c`)?.metadata.managedFields, undefined);

    // Deleting the last key of a value removes the value; a lone key becomes a set again and back.
    await admin.delete(CoreTypes.configMap, "a", { namespace: ns });
    await admin.patch(CoreTypes.configMap, "b", { data: { tags: "x,y" } }, { namespace: ns });
    await eventually(() => {
      assert.deepEqual(names("z"), []);
      assert.deepEqual(names("x"), ["b", "c"]);
    });
    await admin.delete(CoreTypes.configMap, "c", { namespace: ns });
    await eventually(() => assert.deepEqual(names("x"), ["b"]));
    assert.deepEqual(inf.indexKeys("tag", "y"), [`${ns}/b`]);
    inf.stop();
  });
});
