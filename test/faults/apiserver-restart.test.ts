// Fault suite, on a private control plane: an etcd compaction while the controller's watches are cut
// off, so that they resume from a compacted resourceVersion and must relist (410 Gone); then
// kube-apiserver killed and restarted in the middle of a churn. After each, everything must settle.

import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { IPAMRequestSpec } from "../../src/api/types.ts";
import {
  faultSeed,
  type Partition,
  partition,
  type Random,
  RestartableControlPlane,
  randomInt,
  seededRandom,
} from "../harness/faults.ts";
import { eventually } from "../harness/index.ts";
import { ipamFixture, type RunningController, runControllerInProcess } from "../harness/ipam.ts";
import { assertSettled, churnPlan, diagnoseFailure, runChurn, seconds } from "./churn.ts";

let plane: RestartableControlPlane;
let controller: RunningController | undefined;
let cut: Partition;
let random: Random;
const log: string[] = [];

before(async () => {
  const seed = faultSeed();
  process.stderr.write(`apiserver-restart: KUBIPAM_FAULT_SEED=${seed}\n`);
  random = seededRandom(seed);
  // First without the watch cache: a watch then resumes from etcd itself, where a compaction bites at
  // once (with the cache, its own window expires the same way, only later). The restart in the
  // second scenario brings the cache back.
  plane = await RestartableControlPlane.start(["--watch-cache=false"]);
  cut = partition();
  controller = await runControllerInProcess(plane, {
    workers: 4,
    hooks: [cut.hook],
    log: (line) => {
      log.push(line);
      if (log.length > 2000) log.splice(0, 1000);
    },
  });
});

after(async () => {
  cut?.heal();
  await controller?.stop();
  await plane?.stop();
});

/** A counter of the controller (by default informer_relists_total: relists after 410 Gone), by resource. */
async function relists(name = "informer_relists_total"): Promise<Record<string, number>> {
  const metric = controller?.manager.registry.getSingleMetric(name);
  const values = metric ? (await metric.get()).values : [];
  return Object.fromEntries(values.map((v) => [String(v.labels.resource), v.value]));
}

function requests(prefix: string, count: number): { name: string; spec: IPAMRequestSpec }[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}-${i}`,
    spec: { ipam: { name: random() < 0.5 ? "v4" : "v6" } },
  }));
}

it("etcd compacted while the controller's watches are cut off: they relist (410) and recover", (t) =>
  diagnoseFailure(
    t,
    () => log.slice(-30),
    async () => {
      const started = performance.now();
      const ns = await plane.createNamespace("faults-compact");
      const f = ipamFixture(plane, ns);
      await f.range("v4", { ranges: ["10.91.0.0/20"], chunkSize: 30 });
      await f.range("v6", { ranges: ["fd00:91::/56"], chunkSize: 64 });
      const warmup = churnPlan(random, requests("warm", 100), 0.2);
      await runChurn(f.client, ns, warmup, { concurrency: 8 });
      await assertSettled(f.client, ns, warmup);
      const before = await relists();

      // Cut while all informers watch (not while one happens to be listing or backing off).
      await eventually(
        () =>
          assert.deepEqual(
            new Set(cut.openWatches()),
            new Set(["ipamranges", "clusteripamranges", "namespaces", "ipamrequests", "ipamallocations"]),
          ),
        { timeoutMs: 60_000 },
      );
      t.diagnostic(`warm-up done (${seconds(started)} s); cutting the controller off`);
      cut.cut();
      const plan = churnPlan(random, requests("blind", 150), 0.3);
      await runChurn(f.client, ns, plan, { concurrency: 8 });
      const revision = await plane.etcdRevision();
      await plane.compact(revision);
      t.diagnostic(`compacted etcd at revision ${revision} (${seconds(started)} s); healing`);
      cut.heal();

      for (const name of warmup.live) plan.live.add(name);
      await assertSettled(f.client, ns, plan);
      const now = await relists();
      t.diagnostic(`relists before ${JSON.stringify(before)}, after ${JSON.stringify(now)}`);
      t.diagnostic(`lists ${JSON.stringify(await relists("informer_lists_total"))}`);
      t.diagnostic(`watch errors ${JSON.stringify(await relists("informer_watch_errors_total"))}`);
      await eventually(async () => {
        const latest = await relists();
        assert.ok(
          (latest.ipamrequests ?? 0) > (before.ipamrequests ?? 0),
          `the request informer relisted after 410 (${JSON.stringify(latest)})`,
        );
      });
      t.diagnostic(`settled after ${seconds(started)} s`);
      f.client.close();
    },
  ));

it("kube-apiserver killed and restarted in the middle of a churn", (t) =>
  diagnoseFailure(
    t,
    () => log.slice(-30),
    async () => {
      const started = performance.now();
      const ns = await plane.createNamespace("faults-restart");
      const f = ipamFixture(plane, ns);
      await f.range("v4", { ranges: ["10.90.0.0/20"], chunkSize: 30 });
      await f.range("v6", { ranges: ["fd00:90::/56"], chunkSize: 64, mode: "RoundRobin" });
      const plan = churnPlan(random, requests("req", 600), 0.3);
      const killAt = randomInt(random, 150, plan.ops.length - 200);
      let restarted: Promise<void> | undefined;
      const downMs = randomInt(random, 500, 3000);
      await runChurn(f.client, ns, plan, {
        concurrency: 8,
        progress: (completed) => {
          if (completed !== killAt) return;
          restarted = (async () => {
            await plane.stopApiserver("SIGKILL");
            t.diagnostic(`kube-apiserver killed after ${completed} ops (${seconds(started)} s)`);
            // The outage itself: how long the API server stays away.
            await new Promise((resolve) => setTimeout(resolve, downMs));
            // Back with the watch cache (the default), as in production.
            await plane.startApiserver();
            t.diagnostic(`kube-apiserver back after ${downMs} ms down (${seconds(started)} s)`);
          })();
        },
      });
      assert.ok(restarted, "the API server was restarted during the churn");
      await restarted;
      await assertSettled(f.client, ns, plan);
      t.diagnostic(
        `${plan.creates} creates, ${plan.deletes} deletes; settled after ${seconds(started)} s; relists ${JSON.stringify(await relists())}`,
      );
      f.client.close();
    },
  ));
