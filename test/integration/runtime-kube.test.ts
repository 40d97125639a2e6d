// KubeClient against a real kube-apiserver: CRUD, patch flavours, status subresource, typed errors,
// preconditions, paging, watch, finalizers, request hooks and request metrics.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { addFinalizer, hasFinalizer, removeFinalizer } from "../../src/runtime/finalizers.ts";
import {
  ApiError,
  CoreTypes,
  isAlreadyExists,
  isConflict,
  isForbidden,
  isNotFound,
  isUnprocessable,
  KubeClient,
  type KubeObject,
  loadKubeConfig,
  type ResourceType,
  type WatchEvent,
} from "../../src/runtime/kube.ts";
import { createRegistry } from "../../src/runtime/metrics.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

interface Widget extends KubeObject {
  spec?: { size?: number };
  status?: { phase?: string; count?: number };
}

const widgetType: ResourceType = {
  group: "runtime-test.kubipam.io",
  version: "v1",
  plural: "widgets",
  kind: "Widget",
  namespaced: true,
};

const widgetCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.runtime-test.kubipam.io" },
  spec: {
    group: "runtime-test.kubipam.io",
    names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
    scope: "Namespaced",
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", properties: { size: { type: "integer", minimum: 0 } } },
              status: {
                type: "object",
                properties: { phase: { type: "string" }, count: { type: "integer" } },
              },
            },
          },
        },
      },
    ],
  },
};

let cluster: TestCluster;
let client: KubeClient;
let ns: string;
const registry = createRegistry();

before(async () => {
  cluster = await useCluster();
  await cluster.installCrds(widgetCrd);
  ns = await cluster.createNamespace("rt-kube");
  client = new KubeClient(cluster.kubeConfig, { registry });
});

after(() => client.close());

const cm = (name: string, data: Record<string, string> = {}): ConfigMap => ({
  metadata: { name, namespace: ns },
  data,
});

describe("KubeClient CRUD", () => {
  it("creates, gets, updates and deletes; errors are typed", async () => {
    const created = await client.create(CoreTypes.configMap, cm("crud", { a: "1" }));
    assert.equal(created.metadata.name, "crud");
    assert.ok(created.metadata.uid);
    assert.equal(created.kind, "ConfigMap");

    const dup = await client.create(CoreTypes.configMap, cm("crud")).catch((e: unknown) => e);
    assert.ok(dup instanceof ApiError);
    assert.equal(isAlreadyExists(dup), true);
    assert.equal(isConflict(dup), false);
    assert.equal(dup.status, 409);

    const got = await client.get<ConfigMap>(CoreTypes.configMap, "crud", { namespace: ns });
    assert.deepEqual(got.data, { a: "1" });

    const updated = await client.update<ConfigMap>(CoreTypes.configMap, { ...got, data: { a: "2" } });
    assert.deepEqual(updated.data, { a: "2" });
    assert.notEqual(updated.metadata.resourceVersion, got.metadata.resourceVersion);

    // A stale resourceVersion conflicts.
    const stale = await client
      .update(CoreTypes.configMap, { ...got, data: { a: "3" } })
      .catch((e: unknown) => e);
    assert.equal(isConflict(stale), true);
    assert.equal(isAlreadyExists(stale), false);

    // Delete preconditions.
    const wrongUid = await client
      .delete(CoreTypes.configMap, "crud", { namespace: ns, preconditions: { uid: "not-the-uid" } })
      .catch((e: unknown) => e);
    assert.equal(isConflict(wrongUid), true);
    const wrongRv = await client
      .delete(CoreTypes.configMap, "crud", {
        namespace: ns,
        preconditions: { resourceVersion: got.metadata.resourceVersion },
      })
      .catch((e: unknown) => e);
    assert.equal(isConflict(wrongRv), true);
    await client.delete(CoreTypes.configMap, "crud", {
      namespace: ns,
      preconditions: { uid: created.metadata.uid, resourceVersion: updated.metadata.resourceVersion },
      propagationPolicy: "Background",
    });

    const missing = await client.get(CoreTypes.configMap, "crud", { namespace: ns }).catch((e: unknown) => e);
    assert.equal(isNotFound(missing), true);
    assert.ok(missing instanceof ApiError);
    assert.equal(missing.reason, "NotFound");
    assert.equal(missing.details?.name, "crud");
    const missingDelete = await client
      .delete(CoreTypes.configMap, "crud", { namespace: ns })
      .catch((e: unknown) => e);
    assert.equal(isNotFound(missingDelete), true);
  });

  it("rejects invalid objects with 422 and needs a namespace for namespaced types", async () => {
    const bad = await client.create(CoreTypes.configMap, cm("Not_Valid")).catch((e: unknown) => e);
    assert.equal(isUnprocessable(bad), true);
    await assert.rejects(client.get(CoreTypes.configMap, "x"), /namespace is required/);
  });

  it("patches with merge patch, JSON patch and server-side apply", async () => {
    await client.create(CoreTypes.configMap, cm("patch", { a: "1", b: "2" }));
    const merged = await client.patch<ConfigMap>(
      CoreTypes.configMap,
      "patch",
      { data: { b: null, c: "3" } },
      { namespace: ns },
    );
    assert.deepEqual(merged.data, { a: "1", c: "3" });

    const jsonPatched = await client.patch<ConfigMap>(
      CoreTypes.configMap,
      "patch",
      [
        { op: "test", path: "/metadata/resourceVersion", value: merged.metadata.resourceVersion },
        { op: "replace", path: "/data/a", value: "10" },
      ],
      { namespace: ns, patchType: "json" },
    );
    assert.equal(jsonPatched.data?.a, "10");
    // The same test against the old resourceVersion fails.
    const failed = await client
      .patch(
        CoreTypes.configMap,
        "patch",
        [{ op: "test", path: "/metadata/resourceVersion", value: merged.metadata.resourceVersion }],
        { namespace: ns, patchType: "json" },
      )
      .catch((e: unknown) => e);
    assert.ok(failed instanceof ApiError);

    // Merge patch with a stale resourceVersion is an optimistic-concurrency conflict.
    const conflict = await client
      .patch(
        CoreTypes.configMap,
        "patch",
        { metadata: { resourceVersion: merged.metadata.resourceVersion }, data: { z: "1" } },
        { namespace: ns },
      )
      .catch((e: unknown) => e);
    assert.equal(isConflict(conflict), true);

    const applied = await client.apply<ConfigMap>(
      CoreTypes.configMap,
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied", namespace: ns }, data: { x: "1" } },
      { fieldManager: "runtime-test" },
    );
    assert.deepEqual(applied.data, { x: "1" });
    // Another manager changing the same field conflicts unless forced.
    const ssaConflict = await client
      .patch(
        CoreTypes.configMap,
        "applied",
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied" }, data: { x: "2" } },
        { namespace: ns, patchType: "apply", fieldManager: "someone-else" },
      )
      .catch((e: unknown) => e);
    assert.equal(isConflict(ssaConflict), true);
    const forced = await client.patch<ConfigMap>(
      CoreTypes.configMap,
      "applied",
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied" }, data: { x: "2" } },
      { namespace: ns, patchType: "apply", fieldManager: "someone-else", force: true },
    );
    assert.equal(forced.data?.x, "2");
  });

  it("writes the status subresource of a custom resource (merge patch and PUT)", async () => {
    const w = await client.create<Widget>(widgetType, {
      metadata: { name: "w1", namespace: ns },
      spec: { size: 3 },
      status: { phase: "ignored on create" },
    });
    assert.equal(w.status, undefined, "status is not written through the main resource");
    const patched = await client.patchStatus<Widget>(
      widgetType,
      "w1",
      { status: { phase: "Ready" } },
      { namespace: ns },
    );
    assert.equal(patched.status?.phase, "Ready");
    assert.equal(patched.spec?.size, 3);
    const put = await client.updateStatus<Widget>(widgetType, {
      ...patched,
      spec: { size: 99 },
      status: { phase: "Done", count: 2 },
    });
    assert.deepEqual(put.status, { phase: "Done", count: 2 });
    assert.equal(put.spec?.size, 3, "spec is not written through /status");
    const stale = await client
      .updateStatus<Widget>(widgetType, { ...patched, status: { phase: "Stale" } })
      .catch((e: unknown) => e);
    assert.equal(isConflict(stale), true);
    // Strategic merge patch is not supported for custom resources.
    const smp = await client
      .patch(widgetType, "w1", { spec: { size: 4 } }, { namespace: ns, patchType: "strategic" })
      .catch((e: unknown) => e);
    assert.ok(smp instanceof ApiError);
    assert.equal(smp.status, 415);
  });

  it("lists with selectors and pages", async () => {
    for (let i = 0; i < 7; i++) {
      await client.create(CoreTypes.configMap, {
        metadata: { name: `page-${i}`, namespace: ns, labels: { paged: "yes", parity: String(i % 2) } },
      });
    }
    const first = await client.list<ConfigMap>(CoreTypes.configMap, {
      namespace: ns,
      labelSelector: "paged=yes",
      limit: 3,
    });
    assert.equal(first.items.length, 3);
    assert.ok(first.continue);
    assert.ok(first.resourceVersion);
    assert.equal(first.items[0]?.kind, "ConfigMap");
    const all = await client.listAll<ConfigMap>(CoreTypes.configMap, {
      namespace: ns,
      labelSelector: "paged=yes",
      pageSize: 2,
    });
    assert.deepEqual(
      all.items.map((x) => x.metadata.name).sort(),
      [0, 1, 2, 3, 4, 5, 6].map((i) => `page-${i}`),
    );
    const slim = await client.listAll<ConfigMap>(CoreTypes.configMap, {
      namespace: ns,
      labelSelector: "paged=yes",
      pageSize: 2,
      transform: (item) => ({ ...item, metadata: { ...item.metadata, managedFields: undefined } }),
    });
    assert.ok(
      all.items.some((x) => x.metadata.managedFields),
      "the server sends managedFields",
    );
    assert.equal(slim.items.length, 7);
    assert.ok(
      slim.items.every((x) => x.metadata.managedFields === undefined),
      "transformed on every page",
    );
    const odd = await client.list(CoreTypes.configMap, {
      namespace: ns,
      labelSelector: "paged=yes,parity=1",
    });
    assert.equal(odd.items.length, 3);
    const byField = await client.list(CoreTypes.configMap, {
      namespace: ns,
      fieldSelector: "metadata.name=page-4",
    });
    assert.deepEqual(
      byField.items.map((x) => x.metadata.name),
      ["page-4"],
    );
  });

  it("watches from a resourceVersion with bookmarks, and stops on abort", async () => {
    const start = await client.list(CoreTypes.configMap, { namespace: ns, limit: 1 });
    const ac = new AbortController();
    const events: WatchEvent<ConfigMap>[] = [];
    const watching = (async () => {
      for await (const ev of client.watch<ConfigMap>(
        CoreTypes.configMap,
        {
          namespace: ns,
          resourceVersion: start.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: 60,
        },
        ac.signal,
      )) {
        events.push(ev);
      }
    })();
    await client.create(CoreTypes.configMap, cm("watched", { v: "1" }));
    await client.patch(CoreTypes.configMap, "watched", { data: { v: "2" } }, { namespace: ns });
    await client.delete(CoreTypes.configMap, "watched", { namespace: ns });
    await eventually(() => {
      const mine = events.filter(
        (e) => e.type !== "BOOKMARK" && e.type !== "ERROR" && e.object.metadata.name === "watched",
      );
      assert.deepEqual(
        mine.map((e) => e.type),
        ["ADDED", "MODIFIED", "DELETED"],
      );
    });
    ac.abort();
    await watching; // ends without an error
  });

  it("reports 403 as forbidden for an identity without rights", async () => {
    const path = await cluster.serviceAccountKubeconfig(ns, "nobody", []);
    const weak = new KubeClient(await loadKubeConfig(path));
    try {
      const err = await weak.list(CoreTypes.configMap, { namespace: ns }).catch((e: unknown) => e);
      assert.equal(isForbidden(err), true);
    } finally {
      weak.close();
    }
  });
});

describe("finalizers", () => {
  it("adds and removes finalizers without depending on resourceVersion", async () => {
    const fm = { fieldManager: "runtime-test" };
    const obj = await client.create(CoreTypes.configMap, cm("fin"));
    const withF = await addFinalizer(client, CoreTypes.configMap, obj, "runtime-test/a", fm);
    assert.equal(hasFinalizer(withF, "runtime-test/a"), true);
    assert.equal(
      await addFinalizer(client, CoreTypes.configMap, withF, "runtime-test/a", fm),
      withF,
      "no-op when present",
    );
    // A stale copy (another writer changed the object since) still adds, keeping the other entry.
    const two = await addFinalizer(client, CoreTypes.configMap, obj, "runtime-test/b", fm);
    assert.deepEqual(two.metadata.finalizers, ["runtime-test/a", "runtime-test/b"]);

    await client.delete(CoreTypes.configMap, "fin", { namespace: ns });
    const deleting = await client.get(CoreTypes.configMap, "fin", { namespace: ns });
    assert.ok(deleting.metadata.deletionTimestamp, "held by finalizers");
    // A stale copy whose index no longer holds the entry is refused instead of removing another one.
    const shifted = { ...deleting, metadata: { ...deleting.metadata, finalizers: ["runtime-test/b"] } };
    const refused = await removeFinalizer(client, CoreTypes.configMap, shifted, "runtime-test/b").catch(
      (e: unknown) => e,
    );
    assert.equal((refused as { status?: number }).status, 422, "index test fails on a moved list");
    const one = await removeFinalizer(client, CoreTypes.configMap, deleting, "runtime-test/a");
    assert.deepEqual(one?.metadata.finalizers, ["runtime-test/b"]);
    await removeFinalizer(client, CoreTypes.configMap, one ?? deleting, "runtime-test/b");
    const gone = await client.get(CoreTypes.configMap, "fin", { namespace: ns }).catch((e: unknown) => e);
    assert.equal(isNotFound(gone), true);
    // A copy read before the deletion must not bring the object back (apply creates missing objects).
    const revived = await addFinalizer(client, CoreTypes.configMap, deleting, "runtime-test/c", fm).catch(
      (e: unknown) => e,
    );
    assert.ok(revived instanceof Error, "adding to a deleted object fails");
    const still = await client.get(CoreTypes.configMap, "fin", { namespace: ns }).catch((e: unknown) => e);
    assert.equal(isNotFound(still), true, "not re-created");
  });
});

describe("request hooks and metrics", () => {
  it("lets a hook fail requests before or after they reach the server", async () => {
    const c = new KubeClient(cluster.kubeConfig, { registry: createRegistry() });
    let mode: "pass" | "before" | "after" = "pass";
    const seen: string[] = [];
    c.use(async (req, next) => {
      seen.push(`${req.verb} ${req.resource} ${req.name ?? ""}`);
      if (req.verb === "create" && mode === "before") throw new Error("injected: not sent");
      const res = await next(req);
      if (req.verb === "create" && mode === "after") throw new Error("injected: answer lost");
      return res;
    });
    try {
      mode = "before";
      await assert.rejects(c.create(CoreTypes.configMap, cm("hook-a")), /not sent/);
      assert.equal(
        isNotFound(await c.get(CoreTypes.configMap, "hook-a", { namespace: ns }).catch((e: unknown) => e)),
        true,
      );
      mode = "after";
      await assert.rejects(c.create(CoreTypes.configMap, cm("hook-b")), /answer lost/);
      const b = await c.get(CoreTypes.configMap, "hook-b", { namespace: ns });
      assert.equal(b.metadata.name, "hook-b", "the write was applied although the caller saw an error");
      assert.ok(seen.includes("create configmaps "));
      assert.ok(seen.includes("get configmaps hook-b"));
    } finally {
      c.close();
    }
  });

  it("counts requests by verb, resource and code", async () => {
    await client.get(CoreTypes.configMap, "does-not-exist", { namespace: ns }).catch(() => undefined);
    const text = await registry.metrics();
    assert.match(text, /rest_client_requests_total\{verb="get",resource="configmaps",code="404"\} \d+/);
    assert.match(text, /rest_client_requests_total\{verb="create",resource="configmaps",code="201"\} \d+/);
    assert.match(text, /rest_client_requests_total\{verb="patch",resource="widgets\/status",code="200"\} 1/);
  });

  it("times out requests that get no answer", async () => {
    const c = new KubeClient(cluster.kubeConfig, { registry: createRegistry(), timeoutMs: 200 });
    try {
      // A watch sent as a plain request: its body does not complete within the timeout.
      const err = await c
        .raw("GET", `/api/v1/namespaces/${ns}/configmaps?watch=1&timeoutSeconds=30`, { timeoutMs: 200 })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(err instanceof Error);
      assert.equal(err.name, "RequestTimeoutError");
    } finally {
      c.close();
    }
  });
});
