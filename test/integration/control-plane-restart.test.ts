// The hooks the fault suite needs from the local control plane: kube-apiserver killed and started
// again on the same address (clients keep their kubeconfig and their data), extra API server flags,
// and an etcd compaction that makes older resourceVersions answer 410 Gone.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  compactEtcd,
  etcdRevision,
  LocalControlPlane,
  resolveBinDir,
} from "../../src/cli/control-plane/index.ts";
import { CoreTypes, isGone, KubeClient, type KubeObject } from "../../src/runtime/kube.ts";

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

let plane: LocalControlPlane;
let client: KubeClient;
const namespace = "default";

before(async () => {
  // Without the watch cache a list at an exact resourceVersion is served by etcd itself, where the
  // compaction bites at once.
  plane = await LocalControlPlane.start({
    binDir: await resolveBinDir(),
    keepAlive: false,
    apiserverArgs: ["--watch-cache=false"],
  });
  client = new KubeClient(plane.kubeConfig(), { timeoutMs: 5_000 });
});

after(async () => {
  client?.close();
  await plane?.stop();
});

test("etcd compaction: a list at an older resourceVersion is 410 Gone, the current one still served", async () => {
  const created = await client.create<ConfigMap>(CoreTypes.configMap, {
    metadata: { name: "compacted", namespace },
    data: { v: "1" },
  });
  const oldVersion = created.metadata.resourceVersion ?? "";
  await client.patch(CoreTypes.configMap, "compacted", { data: { v: "2" } }, { namespace });
  const revision = await etcdRevision(plane.etcdUrl);
  assert.ok(revision > Number(oldVersion), `etcd revision ${revision} is past ${oldVersion}`);

  const exact = { namespace, resourceVersion: oldVersion, resourceVersionMatch: "Exact" } as const;
  const atOldVersion = await client.list<ConfigMap>(CoreTypes.configMap, exact);
  assert.equal(atOldVersion.items.find((c) => c.metadata.name === "compacted")?.data?.v, "1");

  await compactEtcd(plane.etcdUrl, revision);
  await assert.rejects(client.list(CoreTypes.configMap, exact), isGone);
  const now = await client.get<ConfigMap>(CoreTypes.configMap, "compacted", { namespace });
  assert.equal(now.data?.v, "2");
});

test("kube-apiserver killed and started again: same address, same client, data kept", async () => {
  const server = plane.server;
  await client.create<ConfigMap>(CoreTypes.configMap, {
    metadata: { name: "survivor", namespace },
    data: { kept: "yes" },
  });
  const [etcdPid] = plane.pids;

  await plane.stopApiserver("SIGKILL");
  assert.equal(plane.running, false);
  assert.deepEqual(plane.pids, [etcdPid], "etcd keeps running");
  await assert.rejects(client.get(CoreTypes.configMap, "survivor", { namespace }));
  await assert.rejects(
    plane.startApiserver().then(() => plane.startApiserver()),
    /is running/,
  );

  assert.equal(plane.server, server);
  assert.equal(plane.running, true);
  const survivor = await client.get<ConfigMap>(CoreTypes.configMap, "survivor", { namespace });
  assert.equal(survivor.data?.kept, "yes");
});

test("stopApiserver with SIGTERM ends it gracefully; a stopped control plane refuses to restart", async () => {
  await plane.stopApiserver("SIGTERM");
  assert.equal(plane.running, false);
  await plane.startApiserver();
  await client.get(CoreTypes.namespace, namespace);
  await plane.stop();
  await assert.rejects(plane.startApiserver(), /stopped/);
});
