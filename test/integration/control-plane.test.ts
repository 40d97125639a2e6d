// The local control plane is a real API server: custom resources, watches, the status subresource,
// RBAC with a least-privilege ServiceAccount; and it never outlives the process that started it.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from "@kubernetes/client-node";
import { ApiError, type HttpMethod, KubeClient } from "../../src/runtime/kube.ts";
import { eventually, loadKubeconfig, type TestCluster, useCluster } from "../harness/index.ts";

const GROUP = "harness.kubipam.test";
const VERSION = "v1";
const PLURAL = "widgets";

const widgetCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${PLURAL}.${GROUP}` },
  spec: {
    group: GROUP,
    scope: "Namespaced",
    names: { plural: PLURAL, singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", properties: { size: { type: "integer", minimum: 0 } } },
              status: { type: "object", properties: { phase: { type: "string" } } },
            },
          },
        },
      },
    ],
  },
};

interface Widget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number };
  spec?: { size?: number };
  status?: { phase?: string };
}

function widget(name: string, size: number): Widget {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: "Widget", metadata: { name }, spec: { size } };
}

function status(error: unknown): number | undefined {
  if (error instanceof ApiError) return error.status;
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "number") {
    return error.code;
  }
  return undefined;
}

/** client-node's own KubeConfig for the admin: this file checks the control plane with client-node too. */
function adminConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  return kc;
}

let cluster: TestCluster;
let namespace: string;

before(async () => {
  cluster = await useCluster();
  await cluster.installCrds(widgetCrd);
  namespace = await cluster.createNamespace("control-plane");
});

describe("custom resources", () => {
  test("create, watch, status-patch and delete a custom resource", async () => {
    const api = adminConfig().makeApiClient(CustomObjectsApi);
    const list = (await api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
    })) as {
      metadata: { resourceVersion: string };
    };

    const events: { type: string; name: string; size?: number; phase?: string }[] = [];
    let watchError: unknown;
    const watch = new Watch(adminConfig());
    const controller = await watch.watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
      { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: false },
      (type: string, object: Widget) => {
        events.push({
          type,
          name: object.metadata.name,
          size: object.spec?.size,
          phase: object.status?.phase,
        });
      },
      (error: unknown) => {
        watchError = error;
      },
    );
    try {
      const created = (await api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        body: widget("first", 1),
      })) as Widget;
      assert.equal(created.metadata.generation, 1);

      // Custom resources reject strategic merge patch: merge patch it is.
      const mergeOptions = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
      const patched = (await api.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: "first",
          body: { spec: { size: 2 } },
        },
        mergeOptions,
      )) as Widget;
      assert.equal(patched.spec?.size, 2);
      assert.equal(patched.metadata.generation, 2);

      const withStatus = (await api.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: "first",
          body: { status: { phase: "Ready" }, spec: { size: 99 } },
        },
        mergeOptions,
      )) as Widget;
      assert.equal(withStatus.status?.phase, "Ready");
      assert.equal(withStatus.spec?.size, 2, "the status subresource ignores spec changes");
      assert.equal(withStatus.metadata.generation, 2, "status writes do not bump the generation");

      // A stale resourceVersion is a conflict (optimistic concurrency).
      await assert.rejects(
        cluster.rest.request("PUT", `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}/first`, {
          body: { ...patched, spec: { size: 3 } },
        }),
        (error: unknown) => status(error) === 409,
      );

      await api.deleteNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: "first",
      });
      await assert.rejects(
        api.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: "first",
        }),
        (error: unknown) => status(error) === 404,
      );

      await eventually(() => {
        assert.equal(watchError, undefined);
        assert.deepEqual(events, [
          { type: "ADDED", name: "first", size: 1, phase: undefined },
          { type: "MODIFIED", name: "first", size: 2, phase: undefined },
          { type: "MODIFIED", name: "first", size: 2, phase: "Ready" },
          { type: "DELETED", name: "first", size: 2, phase: "Ready" },
        ]);
      });
    } finally {
      controller.abort();
    }
  });

  test("server-side apply through the harness is idempotent and lands in the given namespace", async () => {
    const [first] = await cluster.applyManifests(
      `apiVersion: ${GROUP}/${VERSION}\nkind: Widget\nmetadata:\n  name: applied\nspec:\n  size: 5\n`,
      { namespace },
    );
    const [second] = await cluster.applyManifests(widget("applied", 5), { namespace });
    assert.equal(first?.metadata.namespace, namespace);
    assert.equal(second?.metadata.resourceVersion, first?.metadata.resourceVersion, "no-op apply");
  });
});

describe("least-privilege identity", () => {
  test("a ServiceAccount gets 403 where its RBAC says no, and succeeds where it says yes", async () => {
    const other = await cluster.createNamespace("control-plane-other");
    await cluster.applyManifests(widget("visible", 1), { namespace });
    await cluster.applyManifests(widget("elsewhere", 1), { namespace: other });

    const kubeconfigPath = await cluster.serviceAccountKubeconfig(namespace, "reader", [
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "widget-reader" },
        rules: [
          { apiGroups: [GROUP], resources: [PLURAL], verbs: ["get", "list", "watch"] },
          { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ["patch"] },
        ],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "widget-reader" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "widget-reader" },
        subjects: [{ kind: "ServiceAccount", name: "reader", namespace }],
      },
    ]);
    const kubeconfig = readFileSync(kubeconfigPath, "utf8");
    assert.doesNotMatch(kubeconfig, new RegExp(adminConfig().getCurrentUser()?.token ?? "no admin token"));

    const rest = new KubeClient(loadKubeconfig(kubeconfigPath));
    const base = `/apis/${GROUP}/${VERSION}/namespaces`;
    const review = await rest.request<{ status?: { userInfo?: { username?: string } } }>(
      "POST",
      "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      { body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } },
    );
    assert.equal(review.status?.userInfo?.username, `system:serviceaccount:${namespace}:reader`);

    // Allowed by the Role.
    const list = await rest.request<{ items: Widget[] }>("GET", `${base}/${namespace}/${PLURAL}`);
    assert.ok(list.items.some((item) => item.metadata.name === "visible"));
    assert.ok(list.items.every((item) => item.metadata.namespace === namespace));
    const patched = await rest.request<Widget>("PATCH", `${base}/${namespace}/${PLURAL}/visible/status`, {
      body: { status: { phase: "Seen" } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(patched.status?.phase, "Seen");

    // Not granted: writes to the main resource, other namespaces, other resources, cluster scope.
    const forbidden: [HttpMethod, string, object?][] = [
      ["POST", `${base}/${namespace}/${PLURAL}`, widget("mine", 1)],
      ["PATCH", `${base}/${namespace}/${PLURAL}/visible`, { spec: { size: 7 } }],
      ["DELETE", `${base}/${namespace}/${PLURAL}/visible`],
      ["GET", `${base}/${other}/${PLURAL}`],
      ["GET", `${base}/${other}/${PLURAL}/elsewhere`],
      ["GET", `/api/v1/namespaces/${namespace}/secrets`],
      ["GET", `/apis/${GROUP}/${VERSION}/${PLURAL}`],
      ["GET", "/api/v1/namespaces"],
    ];
    for (const [method, path, body] of forbidden) {
      const response = await rest.raw(method, path, {
        ...(body
          ? { body, contentType: method === "PATCH" ? "application/merge-patch+json" : "application/json" }
          : {}),
      });
      assert.equal(response.status, 403, `${method} ${path}: ${response.text}`);
    }
  });
});

describe("lifetime of a local control plane", () => {
  const child = fileURLToPath(new URL("../harness/control-plane-child.ts", import.meta.url));

  function gone(pid: number): boolean {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    // A zombie waiting to be reaped by its new parent is gone for our purposes (its state from /proc
    // on Linux, from ps where there is no /proc).
    try {
      if (!existsSync("/proc/self")) {
        return execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" }).includes("Z");
      }
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
    } catch {
      return true;
    }
  }

  async function startChild() {
    const proc = spawn(process.execPath, ["--import", "tsx", child, cluster.binDir], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    proc.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once("exit", (code, signal) => resolve({ code, signal })),
    );
    const line = await new Promise<string>((resolve, reject) => {
      let stdout = "";
      proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk;
        const newline = stdout.indexOf("\n");
        if (newline >= 0) resolve(stdout.slice(0, newline));
      });
      void exited.then(({ code }) =>
        reject(new Error(`child exited with ${code} before it was ready:\n${stderr}`)),
      );
    });
    const info = JSON.parse(line) as { pids: number[]; dir: string };
    assert.equal(info.pids.length, 2);
    assert.ok(existsSync(info.dir));
    for (const pid of info.pids) assert.equal(gone(pid), false);
    return { proc, exited, info, stderr: () => stderr };
  }

  async function assertCleanedUp(info: { pids: number[]; dir: string }): Promise<void> {
    await eventually(
      () => {
        for (const pid of info.pids) assert.ok(gone(pid), `process ${pid} still runs`);
        assert.equal(existsSync(info.dir), false, `${info.dir} still exists`);
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  test("SIGKILL of the parent: the janitor stops etcd and kube-apiserver and removes the folder", async () => {
    const { proc, exited, info } = await startChild();
    proc.kill("SIGKILL");
    assert.equal((await exited).signal, "SIGKILL");
    await assertCleanedUp(info);
  });

  test("SIGTERM: the control plane stops, then the process ends with the signal", async () => {
    const { proc, exited, info } = await startChild();
    proc.kill("SIGTERM");
    assert.equal((await exited).signal, "SIGTERM");
    await assertCleanedUp(info);
  });

  test("uncaught exception: the control plane goes with the process", async () => {
    const { proc, exited, info, stderr } = await startChild();
    proc.stdin.write("throw\n");
    assert.equal((await exited).code, 1);
    assert.match(stderr(), /deliberate uncaught exception/);
    await assertCleanedUp(info);
  });
});
