// Leader election between electors in one process, on a real Lease.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CoreTypes, KubeClient } from "../../src/runtime/kube.ts";
import { type ElectionOutcome, LeaderElector, type Lease } from "../../src/runtime/leader-election.ts";
import { createRegistry } from "../../src/runtime/metrics.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";

let cluster: TestCluster;
let admin: KubeClient;
const clients: KubeClient[] = [];
const stops: AbortController[] = [];

// Short but valid timings (lease > renew deadline > 1.2 × retry).
const timing = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 300 };
const MICRO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

before(async () => {
  cluster = await useCluster();
  admin = new KubeClient(cluster.kubeConfig, { registry: createRegistry() });
  clients.push(admin);
});

after(() => {
  for (const s of stops) s.abort();
  for (const c of clients) c.close();
});

interface Candidate {
  elector: LeaderElector;
  stop: AbortController;
  run: Promise<ElectionOutcome>;
  leadingSignal: AbortSignal | undefined;
  stopped: { lost: boolean; reason: string }[];
  leaders: string[];
  client: KubeClient;
}

function candidate(ns: string, lease: string, identity: string, registry = createRegistry()): Candidate {
  const client = new KubeClient(cluster.kubeConfig, { registry });
  clients.push(client);
  const stop = new AbortController();
  stops.push(stop);
  const c: Candidate = {
    client,
    stop,
    leadingSignal: undefined,
    stopped: [],
    leaders: [],
    elector: undefined as unknown as LeaderElector,
    run: Promise.resolve("stopped"),
  };
  c.elector = new LeaderElector(client, {
    namespace: ns,
    name: lease,
    identity,
    ...timing,
    registry,
    onStartedLeading: async (signal) => {
      c.leadingSignal = signal;
      // Lead until told to stop (like controllers would).
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
    },
    onStoppedLeading: (info) => {
      c.stopped.push(info);
    },
    onNewLeader: (identity) => {
      c.leaders.push(identity);
    },
  });
  c.run = c.elector.run(stop.signal);
  return c;
}

async function getLease(ns: string, name: string): Promise<Lease> {
  return admin.get<Lease>(CoreTypes.lease, name, { namespace: ns });
}

describe("LeaderElector", () => {
  it("elects one leader; a released lease passes to the other at once", async () => {
    const ns = await cluster.createNamespace("rt-le");
    const a = candidate(ns, "lock", "a");
    await eventually(() => assert.equal(a.elector.isLeader(), true));
    const b = candidate(ns, "lock", "b");
    await eventually(() => assert.equal(b.elector.getLeader(), "a"), { timeoutMs: 20_000 });
    assert.equal(b.elector.isLeader(), false);

    const lease = await getLease(ns, "lock");
    assert.equal(lease.spec?.holderIdentity, "a");
    assert.equal(lease.spec?.leaseDurationSeconds, 4);
    assert.match(lease.spec?.renewTime ?? "", MICRO);
    assert.match(lease.spec?.acquireTime ?? "", MICRO);
    assert.equal(lease.spec?.leaseTransitions, 0);
    // The leader keeps renewing.
    await eventually(async () => {
      const l = await getLease(ns, "lock");
      assert.notEqual(l.spec?.renewTime, lease.spec?.renewTime);
    });
    assert.equal(b.elector.isLeader(), false, "the follower waits while the lease is renewed");

    // Graceful stop: leading signal aborts, the lease is released, the other candidate takes over.
    a.stop.abort();
    assert.equal(await a.run, "stopped");
    assert.equal(a.leadingSignal?.aborted, true);
    assert.deepEqual(a.stopped, [{ lost: false, reason: "stopped" }]);
    await eventually(() => assert.equal(b.elector.isLeader(), true), { timeoutMs: 20_000 });
    const taken = await getLease(ns, "lock");
    assert.equal(taken.spec?.holderIdentity, "b");
    assert.equal(taken.spec?.leaseTransitions, 1, "one transition: a to b");
    b.stop.abort();
    assert.equal(await b.run, "stopped");
    const released = await getLease(ns, "lock");
    assert.equal(released.spec?.holderIdentity, "");
    assert.equal(released.spec?.leaseDurationSeconds, 1);
  });

  it("a follower takes over an abandoned lease only after the lease duration", async () => {
    const ns = await cluster.createNamespace("rt-le-expire");
    const now = new Date().toISOString().replace("Z", "000Z");
    await admin.create<Lease>(CoreTypes.lease, {
      metadata: { name: "lock", namespace: ns },
      spec: {
        holderIdentity: "crashed",
        leaseDurationSeconds: 2,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 3,
      },
    });
    const c = candidate(ns, "lock", "c");
    await eventually(() => assert.equal(c.elector.isLeader(), true), { timeoutMs: 20_000 });
    assert.deepEqual(c.leaders, ["crashed", "c"]);
    const l = await getLease(ns, "lock");
    assert.equal(l.spec?.holderIdentity, "c");
    assert.equal(l.spec?.leaseTransitions, 4);
    c.stop.abort();
    await c.run;
  });

  it("aborts the leading signal at once when another holder takes the lease", async () => {
    const ns = await cluster.createNamespace("rt-le-lost");
    const registry = createRegistry();
    const a = candidate(ns, "lock", "a", registry);
    await eventually(() => assert.equal(a.elector.isLeader(), true));
    assert.match(await registry.metrics(), /leader_election_master_status\{name="lock"\} 1/);
    const lease = await getLease(ns, "lock");
    const now = new Date().toISOString().replace("Z", "000Z");
    await admin.update<Lease>(CoreTypes.lease, {
      ...lease,
      spec: { ...lease.spec, holderIdentity: "intruder", leaseDurationSeconds: 60, renewTime: now },
    });
    assert.equal(await a.run, "lost");
    assert.equal(a.leadingSignal?.aborted, true);
    assert.equal(a.elector.isLeader(), false);
    assert.equal(a.stopped.length, 1);
    assert.equal(a.stopped[0]?.lost, true);
    assert.match(a.stopped[0]?.reason ?? "", /intruder/);
    assert.match(await registry.metrics(), /leader_election_master_status\{name="lock"\} 0/);
    assert.equal(
      (await getLease(ns, "lock")).spec?.holderIdentity,
      "intruder",
      "a lost lease is not released",
    );
  });

  it("steps down when it cannot renew within the renew deadline", async () => {
    const ns = await cluster.createNamespace("rt-le-deadline");
    const a = candidate(ns, "lock", "a");
    let partitioned = false;
    a.client.use(async (req, next) => {
      if (partitioned) throw new Error("injected: network partition");
      return next(req);
    });
    await eventually(() => assert.equal(a.elector.isLeader(), true));
    partitioned = true;
    assert.equal(await a.run, "lost");
    assert.equal(a.leadingSignal?.aborted, true);
    assert.match(a.stopped[0]?.reason ?? "", /renew/);
  });

  it("confirm() proves holding with one write shared by concurrent callers, and fails once taken over", async () => {
    const ns = await cluster.createNamespace("rt-le-confirm");
    const a = candidate(ns, "fence", "a");
    await eventually(() => assert.equal(a.elector.isLeader(), true));
    const before = (await getLease(ns, "fence")).metadata.resourceVersion;
    const confirmed = await Promise.all([a.elector.confirm(), a.elector.confirm(), a.elector.confirm()]);
    assert.deepEqual(confirmed, [true, true, true]);
    assert.notEqual((await getLease(ns, "fence")).metadata.resourceVersion, before, "a write proved it");
    // Someone else writes the lease (a takeover): the next confirmation must fail, and the elector
    // must not quietly take the lease back.
    const lease = await getLease(ns, "fence");
    await admin.update<Lease>(CoreTypes.lease, {
      ...lease,
      metadata: { ...lease.metadata, managedFields: undefined },
      spec: { ...lease.spec, holderIdentity: "intruder" },
    });
    assert.equal(await a.elector.confirm(), false);
    assert.equal((await getLease(ns, "fence")).spec?.holderIdentity, "intruder");
    await eventually(() => assert.equal(a.elector.isLeader(), false), { timeoutMs: 10_000 });
    assert.equal(await a.elector.confirm(), false, "not leading: nothing is confirmed");
  });

  it("rejects inconsistent timings", () => {
    assert.throws(
      () =>
        new LeaderElector(admin, {
          namespace: "x",
          name: "y",
          leaseDurationMs: 10_000,
          renewDeadlineMs: 10_000,
          onStartedLeading: () => {},
        }),
      /leaseDuration must be greater/,
    );
  });
});
