// The event recorder and the manager against a real kube-apiserver.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { EventRecorder, type KubeEvent } from "../../src/runtime/events.ts";
import { CoreTypes, KubeClient, type KubeObject } from "../../src/runtime/kube.ts";
import { Logger } from "../../src/runtime/logger.ts";
import { LeaderElectionLostError, Manager } from "../../src/runtime/manager.ts";
import { createRegistry } from "../../src/runtime/metrics.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

let cluster: TestCluster;
let admin: KubeClient;
const clients: KubeClient[] = [];

before(async () => {
  cluster = await useCluster();
  admin = new KubeClient(cluster.kubeConfig, { registry: createRegistry() });
  clients.push(admin);
});

after(() => {
  for (const c of clients) c.close();
});

async function eventsIn(ns: string): Promise<KubeEvent[]> {
  return (await admin.list<KubeEvent>(CoreTypes.event, { namespace: ns })).items;
}

describe("EventRecorder", () => {
  it("writes events.k8s.io/v1 events and aggregates repeats into a series", async () => {
    const ns = await cluster.createNamespace("rt-events");
    const obj = await admin.create<ConfigMap>(CoreTypes.configMap, {
      metadata: { name: "subject", namespace: ns },
    });
    const rec = new EventRecorder(admin, {
      reportingController: "runtime-test.kubipam.io/controller",
      reportingInstance: "test-1",
      registry: createRegistry(),
    });
    rec.normal(obj, "Allocated", "allocated 10.0.0.0/24", { action: "Allocate" });
    await rec.flush();
    const [first, ...rest] = await eventsIn(ns);
    assert.equal(rest.length, 0);
    assert.ok(first);
    assert.equal(first.reason, "Allocated");
    assert.equal(first.note, "allocated 10.0.0.0/24");
    assert.equal(first.type, "Normal");
    assert.equal(first.action, "Allocate");
    assert.equal(first.reportingController, "runtime-test.kubipam.io/controller");
    assert.equal(first.reportingInstance, "test-1");
    assert.match(first.eventTime, /\.\d{6}Z$/);
    assert.deepEqual(
      {
        kind: first.regarding.kind,
        name: first.regarding.name,
        ns: first.regarding.namespace,
        uid: first.regarding.uid,
      },
      { kind: "ConfigMap", name: "subject", ns, uid: obj.metadata.uid },
    );
    assert.equal(first.series, undefined);

    // Repeats of the same event become one Event with a growing series count; others stay separate.
    for (let i = 0; i < 9; i++) rec.normal(obj, "Allocated", "allocated 10.0.0.0/24", { action: "Allocate" });
    rec.warning(obj, "Busy", "no space left");
    await eventually(async () => {
      await rec.flush();
      const evs = await eventsIn(ns);
      assert.equal(evs.length, 2);
      const allocated = evs.find((e) => e.reason === "Allocated");
      assert.equal(allocated?.series?.count, 10);
      assert.match(allocated?.series?.lastObservedTime ?? "", /\.\d{6}Z$/);
      const busy = evs.find((e) => e.reason === "Busy");
      assert.equal(busy?.type, "Warning");
      assert.equal(busy?.action, "Busy", "action defaults to the reason");
    });
    await rec.stop();
    rec.normal(obj, "After", "ignored after stop");
    await rec.flush();
    assert.equal((await eventsIn(ns)).length, 2);
  });

  it("puts events about cluster-scoped objects into default, and never throws on API errors", async () => {
    const nsName = await cluster.createNamespace("rt-events-cluster");
    const nsObj = await admin.get(CoreTypes.namespace, nsName);
    const rec = new EventRecorder(admin, {
      reportingController: "runtime-test.kubipam.io/controller",
      reportingInstance: "test-2",
      registry: createRegistry(),
    });
    rec.normal(nsObj, "Seen", `namespace ${nsName}`);
    await rec.flush();
    const evs = (await admin.list<KubeEvent>(CoreTypes.event, { namespace: "default" })).items;
    assert.ok(evs.some((e) => e.regarding.name === nsName && e.reason === "Seen"));

    // An event the API rejects (note too long is truncated, but an invalid namespace is not fixable).
    const registry = createRegistry();
    const failing = new EventRecorder(admin, {
      reportingController: "runtime-test.kubipam.io/controller",
      reportingInstance: "test-3",
      registry,
    });
    failing.normal({ kind: "Thing", name: "x", namespace: "Not_A_Namespace" }, "Bad", "x".repeat(5000));
    await failing.flush();
    assert.match(await registry.metrics(), /events_dropped_total\{reason="api_error"\} 1/);
  });

  it("drops events beyond the bounded queue", async () => {
    const registry = createRegistry();
    const slow = new KubeClient(cluster.kubeConfig, { registry: createRegistry() });
    clients.push(slow);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    slow.use(async (req, next) => {
      await gate;
      return next(req);
    });
    const ns = await cluster.createNamespace("rt-events-queue");
    const rec = new EventRecorder(slow, {
      reportingController: "runtime-test.kubipam.io/controller",
      reportingInstance: "test-4",
      registry,
      maxQueue: 3,
    });
    for (let i = 0; i < 10; i++) rec.normal({ kind: "Thing", name: `t${i}`, namespace: ns }, "R", `n${i}`);
    release();
    await rec.flush();
    // One is being written when the rest queue up: 1 + 3 written, 6 dropped.
    assert.match(await registry.metrics(), /events_dropped_total\{reason="queue_full"\} 6/);
    assert.equal((await eventsIn(ns)).length, 4);
  });
  it("sheds low-priority events first and writes every regular one", async () => {
    const registry = createRegistry();
    const ns = await cluster.createNamespace("rt-events-low");
    const rec = new EventRecorder(admin, {
      reportingController: "runtime-test.kubipam.io/controller",
      reportingInstance: "test-low",
      registry,
      maxLowPriorityQueue: 5,
      lowPriorityIntervalMs: 1,
    });
    for (let i = 0; i < 50; i++) {
      rec.event({ kind: "Thing", name: `low${i}`, namespace: ns }, "Normal", "Allocated", `n${i}`, {
        priority: "low",
      });
    }
    for (let i = 0; i < 5; i++)
      rec.warning({ kind: "Thing", name: `warn${i}`, namespace: ns }, "Busy", `w${i}`);
    await rec.flush();
    const written = await eventsIn(ns);
    const warnings = written.filter((e) => e.reason === "Busy");
    const lows = written.filter((e) => e.reason === "Allocated");
    assert.equal(warnings.length, 5, "every regular event is written");
    // The first low one may be in flight before the rest queue up; then 5 queue, 44 are shed.
    assert.ok(lows.length >= 5 && lows.length <= 6, `${lows.length} low-priority events written`);
    assert.match(await registry.metrics(), /events_dropped_total\{reason="shed"\} 4[45]/);
  });
});

describe("Manager", () => {
  it("runs informers, a controller, probes and metrics; shuts down gracefully", async () => {
    const ns = await cluster.createNamespace("rt-mgr");
    const registry = createRegistry();
    const mgr = new Manager({
      kubeConfig: cluster.kubeConfig,
      registry,
      logger: process.env.RT_DEBUG ? new Logger({ format: "text", level: "debug" }) : undefined,
      metricsBindAddress: "127.0.0.1:0",
      healthProbeBindAddress: "127.0.0.1:0",
      leaderElection: {
        enabled: true,
        namespace: ns,
        name: "mgr-lock",
        leaseDurationMs: 4_000,
        renewDeadlineMs: 3_000,
        retryPeriodMs: 300,
      },
    });
    const inf = mgr.informer<ConfigMap>(CoreTypes.configMap, { namespace: ns });
    const reconciled = new Map<string, string | undefined>();
    const ctl = mgr.controller({
      name: "configmaps",
      workers: 2,
      reconcile: async (key) => {
        reconciled.set(key, inf.get(key)?.data?.v);
      },
    });
    ctl.watch(inf);
    await admin.create<ConfigMap>(CoreTypes.configMap, {
      metadata: { name: "one", namespace: ns },
      data: { v: "1" },
    });
    const ac = new AbortController();
    const running = mgr.start(ac.signal);
    after(() => ac.abort());
    await mgr.elected();
    assert.equal(mgr.isLeader(), true);
    await eventually(() => assert.equal(reconciled.get(`${ns}/one`), "1"));
    await admin.patch(CoreTypes.configMap, "one", { data: { v: "2" } }, { namespace: ns });
    await eventually(() => assert.equal(reconciled.get(`${ns}/one`), "2"));

    const { metrics, health } = mgr.ports;
    assert.ok(metrics && health && metrics !== health, "two servers on ephemeral ports");
    const ready = await fetch(`http://127.0.0.1:${health}/readyz?verbose`);
    assert.equal(ready.status, 200);
    assert.match(await ready.text(), /\[\+\]informers ok/);
    const healthz = await fetch(`http://127.0.0.1:${health}/healthz?verbose`);
    assert.equal(healthz.status, 200);
    assert.match(await healthz.text(), /\[\+\]leader-election ok/);
    const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
    assert.match(
      text,
      /controller_runtime_reconcile_total\{controller="configmaps",result="success"\} [1-9]/,
    );
    assert.match(text, /workqueue_adds_total\{name="configmaps",controller="configmaps"\} [1-9]/);
    assert.match(text, /rest_client_requests_total\{verb="list",resource="configmaps",code="200"\} [1-9]/);
    assert.match(text, /leader_election_master_status\{name="mgr-lock"\} 1/);

    ac.abort();
    await running;
    const lease = await admin.get<KubeObject & { spec?: { holderIdentity?: string } }>(
      CoreTypes.lease,
      "mgr-lock",
      {
        namespace: ns,
      },
    );
    assert.equal(lease.spec?.holderIdentity, "", "released on shutdown");
    await assert.rejects(fetch(`http://127.0.0.1:${metrics}/metrics`));
  });

  it("without leader election runs until stopped, not just for the graceful shutdown timeout", async () => {
    const ns = await cluster.createNamespace("rt-mgr-nole");
    const graceful = 100;
    const mgr = new Manager({
      kubeConfig: cluster.kubeConfig,
      registry: createRegistry(),
      metricsBindAddress: "0",
      healthProbeBindAddress: "0",
      gracefulShutdownTimeoutMs: graceful,
    });
    const inf = mgr.informer<ConfigMap>(CoreTypes.configMap, { namespace: ns });
    const seen = new Set<string>();
    mgr.controller({ name: "nole", reconcile: async (key) => void seen.add(key) }).watch(inf);
    const ac = new AbortController();
    const running = mgr.start(ac.signal);
    after(() => ac.abort());
    await mgr.elected();
    const started = Date.now();
    // Well past the graceful timeout, caches and workers must still be serving.
    await eventually(() => assert.ok(Date.now() - started > 10 * graceful, "time has passed"), {
      intervalMs: 20,
    });
    await admin.create<ConfigMap>(CoreTypes.configMap, { metadata: { name: "late", namespace: ns } });
    await eventually(() => assert.ok(seen.has(`${ns}/late`), "a change after the timeout is reconciled"));
    assert.ok(inf.get(`${ns}/late`), "the cache is still live");
    ac.abort();
    await running;
  });

  it("fails with LeaderElectionLostError when the lease is lost", async () => {
    const ns = await cluster.createNamespace("rt-mgr-lost");
    const mgr = new Manager({
      kubeConfig: cluster.kubeConfig,
      registry: createRegistry(),
      logger: process.env.RT_DEBUG ? new Logger({ format: "text", level: "debug" }) : undefined,
      metricsBindAddress: "0",
      healthProbeBindAddress: "0",
      leaderElection: {
        enabled: true,
        namespace: ns,
        name: "lock",
        leaseDurationMs: 4_000,
        renewDeadlineMs: 3_000,
        retryPeriodMs: 300,
      },
    });
    let reconcileSignal: AbortSignal | undefined;
    const ctl = mgr.controller({
      name: "lost",
      reconcile: async (_key, signal) => {
        reconcileSignal = signal;
      },
    });
    ctl.enqueue("k");
    const ac = new AbortController();
    const running = mgr.start(ac.signal);
    after(() => ac.abort());
    await mgr.elected();
    await eventually(() => assert.ok(reconcileSignal, "reconciled"));
    const lease = await admin.get<KubeObject & { spec?: Record<string, unknown> }>(CoreTypes.lease, "lock", {
      namespace: ns,
    });
    await admin.update(CoreTypes.lease, {
      ...lease,
      spec: { ...lease.spec, holderIdentity: "other", leaseDurationSeconds: 60 },
    });
    await assert.rejects(running, LeaderElectionLostError);
    assert.equal(reconcileSignal?.aborted, true);
    ac.abort();
  });
});
