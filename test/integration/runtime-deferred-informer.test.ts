// DeferredInformer against a real kube-apiserver: empty and harmless while its resource is not served,
// then — once a CRD for it is installed after start — informer started, handlers and indexes applied,
// onServed called, objects and their changes seen; and when the CRD is deleted, its objects reported gone.
// A served resource this identity may not list settles as forbidden and syncs once RBAC allows it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DeferredInformer, isServed } from "../../src/runtime/deferred-informer.ts";
import { KubeClient, type KubeObject, loadKubeConfig } from "../../src/runtime/kube.ts";

import { createRegistry } from "../../src/runtime/metrics.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";

interface Widget extends KubeObject {
  spec?: { color?: string };
}

let cluster: TestCluster;
let client: KubeClient;
const stop = new AbortController();

before(async () => {
  cluster = await useCluster();
  client = new KubeClient(cluster.kubeConfig, { registry: createRegistry() });
});

after(() => {
  stop.abort();
  client.close();
});

function widgetCrd(group: string): object {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  };
}

describe("DeferredInformer", () => {
  it("reads as empty until its CRD appears, then informs without a restart", async () => {
    const group = `deferred${Date.now().toString(36)}.example.org`;
    const type = { group, version: "v1", plural: "widgets", kind: "Widget", namespaced: true };
    assert.equal(await isServed(client, type), false);
    const deferred = new DeferredInformer<Widget>(client, type, { pollIntervalMs: 200 });
    const seen: string[] = [];
    deferred.addEventHandler({
      onAdd: (w) => seen.push(`add ${w.metadata.name}`),
      onDelete: (w, info) =>
        seen.push(`delete ${w.metadata.name}${info.finalStateUnknown ? " unknown" : ""}`),
    });
    let servedCalls = 0;
    deferred.onServed(() => servedCalls++);
    assert.equal(deferred.state, "looking");
    const running = deferred.start(stop.signal);
    await deferred.settled();
    assert.equal(deferred.state, "absent");
    assert.equal(deferred.hasSynced(), false);
    assert.deepEqual(deferred.list(), []);
    assert.equal(deferred.get("x/y"), undefined);
    assert.deepEqual(deferred.byIndex("color", "red"), []);

    const ns = await cluster.createNamespace("rt-deferred");
    await cluster.installCrds([widgetCrd(group)]);
    await client.create<Widget>(type, {
      apiVersion: `${group}/v1`,
      kind: "Widget",
      metadata: { name: "w1", namespace: ns },
      spec: { color: "red" },
    });
    // An index added after start applies to the informer made later.
    deferred.addIndex("color", (w) => (w.spec?.color ? [w.spec.color] : []));
    await eventually(() => {
      assert.equal(deferred.hasSynced(), true);
      assert.equal(deferred.state, "synced");
      assert.equal(servedCalls, 1);
      assert.deepEqual(seen, ["add w1"]);
    });
    assert.deepEqual(
      deferred.byIndex("color", "red").map((w) => w.metadata.name),
      ["w1"],
    );
    await client.create<Widget>(type, {
      apiVersion: `${group}/v1`,
      kind: "Widget",
      metadata: { name: "w2", namespace: ns },
      spec: { color: "blue" },
    });
    await eventually(() => assert.equal(deferred.get(`${ns}/w2`)?.spec?.color, "blue"));
    // A callback registered after it was served runs at once.
    let late = 0;
    deferred.onServed(() => late++);
    assert.equal(late, 1);

    // The CRD goes: its objects are reported deleted, the cache is empty, and discovery is asked again.
    await client.raw("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`);
    await eventually(
      () => {
        assert.equal(deferred.state, "absent");
        assert.deepEqual(deferred.list(), []);
        // Seen by the watch (the API server deletes the objects first) or reported when the resource went.
        const deletes = seen.filter((e) => e.startsWith("delete")).map((e) => e.replace(/ unknown$/, ""));
        assert.deepEqual(deletes.sort(), ["delete w1", "delete w2"]);
      },
      { timeoutMs: 30_000 },
    );
    stop.abort();
    await running;
  });

  it("settles as forbidden while listing is not allowed, and syncs once RBAC allows it", async () => {
    const group = `forbidden${Date.now().toString(36)}.example.org`;
    const type = { group, version: "v1", plural: "widgets", kind: "Widget", namespaced: true };
    await cluster.installCrds([widgetCrd(group)]);
    const ns = await cluster.createNamespace("rt-forbidden");
    const path = await cluster.serviceAccountKubeconfig(ns, "late-rbac", []);
    const weak = new KubeClient(await loadKubeConfig(path), { registry: createRegistry() });
    const own = new AbortController();
    try {
      const deferred = new DeferredInformer<Widget>(weak, type, {
        pollIntervalMs: 200,
        backoff: { initialMs: 100, maxMs: 500 },
      });
      let servedCalls = 0;
      deferred.onServed(() => servedCalls++);
      const running = deferred.start(own.signal);
      await deferred.settled(AbortSignal.timeout(30_000));
      assert.equal(deferred.state, "forbidden");
      assert.deepEqual(deferred.list(), []);
      // RBAC fixed after start: the informer, still retrying, completes its cache without a restart.
      await cluster.applyManifests([
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: { name: `widgets-${group}` },
          rules: [{ apiGroups: [group], resources: ["widgets"], verbs: ["list", "watch"] }],
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: `widgets-${group}` },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `widgets-${group}` },
          subjects: [{ kind: "ServiceAccount", namespace: ns, name: "late-rbac" }],
        },
      ]);
      await eventually(
        () => {
          assert.equal(deferred.state, "synced");
          assert.equal(servedCalls, 1);
        },
        { timeoutMs: 30_000 },
      );
      own.abort();
      await running;
    } finally {
      own.abort();
      weak.close();
    }
  });
});
