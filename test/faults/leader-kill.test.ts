// Fault suite: two controller replicas with leader election; the leader is killed with SIGKILL at
// random moments during a churn of 2,000 requests (created and deleted), and every killed replica is
// started again (as a supervisor would). At the end every live request is Ready, the invariants hold
// and nothing leaked.

import assert from "node:assert/strict";
import { before, it } from "node:test";
import { type IPAMRequestSpec, ipamAllocationResource } from "../../src/api/types.ts";
import { type ControllerProcess, controllerPool } from "../../src/testing/controller-process.ts";
import { faultSeed, randomInt, seededRandom } from "../harness/faults.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";
import { ipamFixture } from "../harness/ipam.ts";
import { assertSettled, churnPlan, diagnoseFailure, runChurn, seconds } from "./churn.ts";

const REQUESTS = 2000;
const KILLS = 5;

let cluster: TestCluster;
const pool = controllerPool();
const processes = pool.processes;

before(async () => {
  cluster = await useCluster();
});

const REBUILT = "allocations rebuilt from the API server";
const alive = (p: ControllerProcess) => p.child.exitCode === null && p.child.signalCode === null;

it(`kill -9 the leader ${KILLS} times during a churn of ${REQUESTS} requests: all Ready, no leak`, (t) =>
  diagnoseFailure(
    t,
    () => processes.flatMap((p) => [`--- ${p.identity}`, ...p.output().trimEnd().split("\n").slice(-15)]),
    async () => {
      const started = performance.now();
      const seed = faultSeed();
      t.diagnostic(`KUBIPAM_FAULT_SEED=${seed}`);
      const random = seededRandom(seed);
      const ns = await cluster.createNamespace("faults-leader");
      const f = ipamFixture(cluster, ns);
      await f.range("v4", { ranges: ["10.70.0.0/16"], chunkSize: 28 });
      await f.range("v6", { ranges: ["fd00:70::/48"], chunkSize: 64, mode: "RoundRobin" });
      const requests: { name: string; spec: IPAMRequestSpec }[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const range = random() < 0.6 ? "v4" : "v6";
        requests.push({ name: `req-${i}`, spec: { ipam: { name: range } } });
      }
      const plan = churnPlan(random, requests, 0.4);

      const args = [
        "--leader-elect",
        "--leader-election-namespace",
        ns,
        "--leader-elect-lease-duration",
        "3",
        "--leader-elect-renew-deadline",
        "2",
        "--leader-elect-retry-period",
        "0.5",
        "--workers",
        "8",
      ];
      let generation = 0;
      const replicas = new Set<ControllerProcess>();
      // Replicas that started leading (their log says so; watched as it streams, since the harness
      // keeps only the tail of long logs).
      const leading = new Set<ControllerProcess>();
      let selfExits = 0;
      let stopping = false;
      const startReplica = (): void => {
        const p = pool.start(cluster.kubeconfigPath, `replica-${++generation}`, { args });
        replicas.add(p);
        let tail = "";
        p.child.stderr?.on("data", (chunk: Buffer) => {
          tail = (tail + chunk.toString()).slice(-4096);
          if (tail.includes(REBUILT)) leading.add(p);
        });
        // A replica that exits by itself (e.g. it lost its lease on a busy machine) is restarted too.
        p.child.once("exit", (_code, signal) => {
          replicas.delete(p);
          if (stopping || signal === "SIGKILL") return;
          selfExits++;
          startReplica();
        });
      };
      startReplica();
      startReplica();

      // The churn runs in KILLS + 1 segments; segment s starts only after kill s, and kill k comes at
      // a random point of segment k, so every kill lands in the middle of the churn.
      const segmentOf = (index: number) => Math.floor((index * (KILLS + 1)) / plan.ops.length);
      const segmentStart = (s: number) => Math.ceil((s * plan.ops.length) / (KILLS + 1));
      const killAt = Array.from({ length: KILLS }, (_, k) =>
        randomInt(random, segmentStart(k) + 20, segmentStart(k + 1) - 1),
      );
      let kills = 0;
      const allocated: number[] = [];
      let completed = 0;
      const waiters: (() => void)[] = [];
      const wake = () => {
        for (const w of waiters.splice(0)) w();
      };
      const until = (condition: () => boolean): Promise<void> =>
        condition()
          ? Promise.resolve()
          : new Promise((resolve) => {
              const check = () => (condition() ? resolve() : waiters.push(check));
              waiters.push(check);
            });

      const killer = (async () => {
        for (let k = 0; k < KILLS; k++) {
          await until(() => completed >= (killAt[k] ?? 0));
          const leader = await eventually(
            () => {
              const leaders = [...replicas].filter((p) => alive(p) && leading.has(p));
              assert.equal(leaders.length, 1, `${leaders.length} replicas lead`);
              return leaders[0] as ControllerProcess;
            },
            { timeoutMs: 60_000, intervalMs: 20 },
          );
          // A random moment of its reign: right after the takeover (while it rebuilds) or well into it.
          await new Promise((resolve) => setTimeout(resolve, randomInt(random, 0, 4000)));
          const held = (await f.client.listAll(ipamAllocationResource, { namespace: ns })).items.length;
          allocated.push(held);
          await leader.kill("SIGKILL");
          t.diagnostic(
            `kill ${k + 1}: ${leader.identity} after ${completed} ops, ${held} allocations (${seconds(started)} s)`,
          );
          kills++;
          wake();
          startReplica();
        }
      })();
      await runChurn(f.client, ns, plan, {
        concurrency: 8,
        gate: (index) => until(() => kills >= segmentOf(index)),
        progress: (n) => {
          completed = n;
          wake();
        },
      });
      await killer;
      const churned = seconds(started);
      t.diagnostic(
        `${plan.creates} creates, ${plan.deletes} deletes, ${plan.live.size} live; churn and kills took ${churned} s`,
      );
      assert.equal(kills, KILLS);
      assert.ok(
        allocated.some((n, i) => i > 0 && n > (allocated[i - 1] ?? 0)),
        `the leaders allocated between kills (${allocated.join(", ")})`,
      );

      await assertSettled(f.client, ns, plan);
      for (const p of processes) {
        assert.doesNotMatch(p.output(), /uncaught|unhandled/i, `${p.identity} crashed`);
      }
      t.diagnostic(`settled after ${seconds(started)} s; replicas that exited by themselves: ${selfExits}`);
      stopping = true;
      await Promise.all([...replicas].map((p) => p.kill("SIGTERM")));
      f.client.close();
    },
  ));
