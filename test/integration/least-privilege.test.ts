// Least privilege, proven: the controller runs as a separate process (as the shipped Deployment runs
// it: `controller --leader-elect --leader-election-namespace=<ns>`) with a ServiceAccount token bound
// only by deploy/rbac.yaml. With exactly that RBAC everything works; with one needed permission taken
// away, the controller stays up, says what is missing (log, request status, Warning event), backs off
// instead of spinning, and recovers once the permission is back.
//
// The ClusterRole gets a per-test name (same rules) so that test files binding the shipped RBAC, or a
// broken copy of it, never change each other's permissions.
//
// Like every controller in the suite, this one watches all namespaces: the scenarios assume that no
// other test file's controller (with admin rights) works on the same objects at the same time, as
// when the integration files run one at a time.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import {
  API_VERSION,
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRequest,
  type IPAMRequestStatus,
  ipamAllocationResource,
} from "../../src/api/types.ts";
import type { KubeEvent } from "../../src/runtime/events.ts";
import { ApiError, CoreTypes } from "../../src/runtime/kube.ts";
import { type ControllerProcess, spawnController } from "../../src/testing/controller-process.ts";
import { claimFixture } from "../harness/claims.ts";
import { clusterRangeFixture } from "../harness/cluster-ranges.ts";
import { fakeController } from "../harness/fake-ports.ts";
import {
  eventually,
  installClusterApiCrds,
  invariantsHold,
  type Manifest,
  parseManifests,
  type TestCluster,
  useCluster,
} from "../harness/index.ts";
import { type IpamFixture, ipamFixture } from "../harness/ipam.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const SERVICE_ACCOUNT = "kubipam-controller";
const SHIPPED_CLUSTER_ROLE = "kubipam-controller";
/** client-go's per-key retry backoff, as src/runtime/workqueue.ts configures it: 5 ms · 2^failures. */
const BASE_BACKOFF_MS = 5;

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
}

interface RbacObject extends Manifest {
  rules?: PolicyRule[];
  roleRef?: { apiGroup: string; kind: string; name: string };
}

interface LogLine {
  ts: string;
  level: string;
  msg: string;
  key?: string;
  retries?: number;
  identity?: string;
  error?: { status?: number; reason?: string; message?: string };
}

let cluster: TestCluster;
const processes: ControllerProcess[] = [];
const fixtures: IpamFixture[] = [];

before(async () => {
  cluster = await useCluster();
});

after(async () => {
  await Promise.all(processes.map((p) => p.kill("SIGKILL")));
  for (const f of fixtures) f.client.close();
  // For diagnosis: KUBIPAM_TEST_DUMP=<dir> keeps each controller's log.
  const dump = process.env.KUBIPAM_TEST_DUMP;
  if (dump) for (const p of processes) writeFileSync(`${dump}/controller-${p.identity}.log`, p.output());
});

function shippedRbac(): RbacObject[] {
  return parseManifests(readFileSync(join(ROOT, "deploy", "rbac.yaml"), "utf8")) as RbacObject[];
}

/**
 * The shipped RBAC with its ClusterRole renamed `<name>-<suffix>` (rules unchanged unless `edit` says
 * otherwise) and the ClusterRoleBinding pointing at it.
 */
function isolatedRbac(suffix: string, edit: (rules: PolicyRule[]) => PolicyRule[] = (r) => r): RbacObject[] {
  const renamed = `${SHIPPED_CLUSTER_ROLE}-${suffix}`;
  const objects = shippedRbac();
  assert.ok(
    objects.some((o) => o.kind === "ClusterRole" && o.metadata.name === SHIPPED_CLUSTER_ROLE),
    "deploy/rbac.yaml has the controller's ClusterRole",
  );
  return objects.map((o) => {
    if (o.kind === "ClusterRole" && o.metadata.name === SHIPPED_CLUSTER_ROLE) {
      return { ...o, metadata: { ...o.metadata, name: renamed }, rules: edit(o.rules ?? []) };
    }
    if (o.kind === "ClusterRoleBinding" && o.roleRef?.name === SHIPPED_CLUSTER_ROLE) {
      return { ...o, roleRef: { ...o.roleRef, name: renamed } };
    }
    return o;
  });
}

/** Takes one verb on one resource away (and fails if the shipped RBAC did not grant it). */
function withoutVerb(resource: string, verb: string): (rules: PolicyRule[]) => PolicyRule[] {
  return (rules) => {
    let removed = false;
    const edited = rules.map((rule) => {
      if (!rule.resources?.includes(resource) || !rule.verbs?.includes(verb)) return rule;
      removed = true;
      const others = rule.resources.filter((r) => r !== resource);
      const rest = rule.verbs.filter((v) => v !== verb);
      // Keep the other resources of the rule as they were; the resource itself loses only the verb.
      return others.length === 0
        ? [{ ...rule, verbs: rest }]
        : [
            { ...rule, resources: others },
            { ...rule, resources: [resource], verbs: rest },
          ];
    });
    assert.ok(removed, `the shipped RBAC grants ${verb} on ${resource}`);
    return edited.flat();
  };
}

/** A ServiceAccount in `ns` bound by `rbac`, and the controller running as it, as the Deployment runs it. */
async function startController(t: TestContext, ns: string, rbac: RbacObject[]): Promise<ControllerProcess> {
  const kubeconfig = await cluster.serviceAccountKubeconfig(ns, SERVICE_ACCOUNT, rbac, { rebind: true });
  // As deployed: the leader election Lease in the controller's namespace, the allocation fence in
  // kube-system (granted by the shipped Role there).
  const p = spawnController(kubeconfig, `lp-${ns}`, ["--leader-elect", `--leader-election-namespace=${ns}`]);
  processes.push(p);
  // Gone when its test ends, passed or not: a controller left running would serve the next test's objects.
  t.after(async () => {
    await p.kill("SIGKILL");
  });
  // Leading (the Lease in its namespace) and bootstrapped (list/watch of every kind it caches).
  await eventually(
    () => {
      assertAlive(p);
      assert.ok(p.output().includes("allocations rebuilt from the API server"), "controller not leading yet");
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const lease = await cluster.rest.request<{ spec?: { holderIdentity?: string } }>(
    "GET",
    `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/kubipam-controller`,
  );
  assert.ok(lease.spec?.holderIdentity, "the controller holds the Lease");
  return p;
}

function assertAlive(p: ControllerProcess): void {
  assert.equal(p.child.exitCode, null, `controller exited:\n${p.output().slice(-4000)}`);
  assert.equal(p.child.signalCode, null, "controller was killed");
}

function logLines(p: ControllerProcess): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of p.output().split("\n")) {
    if (!text.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      // A line cut by the harness's log truncation.
    }
  }
  return lines;
}

async function eventsAbout(f: IpamFixture, object: IPAMRequest): Promise<KubeEvent[]> {
  const list = await f.client.list<KubeEvent>(CoreTypes.event, { namespace: f.namespace });
  return list.items.filter((e) => e.regarding.uid === object.metadata.uid);
}

async function allocationsIn(f: IpamFixture): Promise<IPAMAllocation[]> {
  return (await f.client.list<IPAMAllocation>(ipamAllocationResource, { namespace: f.namespace })).items;
}

function assertNoProblems(f: IpamFixture, allReady: boolean): Promise<void> {
  return invariantsHold(f.client, { namespaces: [f.namespace], allReady }, 30_000);
}

async function gone(f: IpamFixture, kind: "request" | "range", name: string): Promise<void> {
  await eventually(
    async () => {
      const object = kind === "request" ? await f.getRequest(name) : await f.getRange(name);
      assert.equal(object, undefined, `${kind} ${name} still there: ${JSON.stringify(object?.status)}`);
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}

const ready = (r: IPAMRequest) => r.status?.state === "Ready";

describe("least privilege: the controller as a ServiceAccount bound by deploy/rbac.yaml", () => {
  it("with exactly the shipped RBAC: allocate, release, delete a range; no forbidden errors", async (t) => {
    const ns = await cluster.createNamespace("lp-ok");
    const f = ipamFixture(cluster, ns);
    fixtures.push(f);
    const controller = await startController(t, ns, isolatedRbac(ns));

    await f.range("pool", { ranges: ["10.80.0.0/24"], chunkSize: 28 });
    for (const name of ["a", "b", "c"]) await f.request(name, { ipam: { name: "pool" } });
    await f.request("dedicated", { ipam: { name: "pool" }, request: "10.80.0.128/26" });
    const allocated = new Map<string, string>();
    for (const name of ["a", "b", "c", "dedicated"]) {
      const r = await f.settled(name, ready);
      allocated.set(name, r.status?.cidr ?? "");
      assert.deepEqual(r.metadata.finalizers ?? [], [], `${name} carries no finalizer`);
    }
    assert.equal(allocated.get("dedicated"), "10.80.0.128/26");
    for (const name of ["a", "b", "c"]) assert.match(allocated.get(name) ?? "", /^10\.80\.0\.\d+\/28$/);
    assert.equal(new Set(allocated.values()).size, 4, "four distinct blocks");
    await f.rangeSettled("pool", (r) => r.status?.state === "Ready" && r.status.allocated === "112");
    assert.equal((await allocationsIn(f)).length, 4);
    await assertNoProblems(f, true);
    // Events (events.k8s.io create) reach the API server.
    const a = await f.getRequest("a");
    assert.ok(a);
    await eventually(async () => {
      const events = await eventsAbout(f, a);
      assert.ok(
        events.some((e) => e.reason === "Allocated" && e.type === "Normal"),
        JSON.stringify(events),
      );
    });

    // Release: the allocation object goes, the finalizer comes off, the space is free again.
    await f.deleteRequest("b");
    await gone(f, "request", "b");
    await f.rangeSettled("pool", (r) => r.status?.allocated === "96");
    assert.deepEqual(
      (await allocationsIn(f)).map((x) => x.spec.cidr).sort(),
      [allocated.get("a"), allocated.get("c"), "10.80.0.128/26"].sort(),
    );
    await f.request("d", { ipam: { name: "pool" } });
    await f.settled("d", ready);
    await assertNoProblems(f, true);

    // Range deletion: held back while requests use it, then gone with everything it allocated.
    await f.deleteRange("pool");
    await f.rangeSettled("pool", (r) => r.status?.state === "Deleting");
    for (const name of ["a", "c", "d", "dedicated"]) await f.deleteRequest(name);
    for (const name of ["a", "c", "d", "dedicated"]) await gone(f, "request", name);
    await gone(f, "range", "pool");
    assert.deepEqual(await allocationsIn(f), []);

    // A ClusterIPAMRange: namespaces (labels) and cluster ranges read, its records in kube-system.
    const cr = clusterRangeFixture(f.client);
    try {
      await cr.label(ns, { "kubipam-test/lp": "yes" });
      const shared = (
        await cr.create("lp", {
          ranges: ["10.82.0.0/24"],
          chunkSize: 28,
          namespaceSelector: { matchLabels: { "kubipam-test/lp": "yes" } },
        })
      ).metadata.name as string;
      await f.request("shared-a", { ipam: { kind: "ClusterIPAMRange", name: shared } });
      assert.equal((await f.settled("shared-a", ready)).status?.cidr, "10.82.0.0/28");
      await cr.settled(shared, (r) => r.status?.state === "Ready" && r.status.allocated === "16");
      const records = await f.client.list<IPAMAllocation>(ipamAllocationResource, {
        namespace: "kube-system",
      });
      assert.ok(
        records.items.some((x) => x.spec.range.name === shared && x.spec.range.kind === "ClusterIPAMRange"),
      );
      await invariantsHold(f.client, { namespaces: [ns], clusterRanges: [shared] }, 30_000);
      await cr.delete(shared);
      await cr.settled(shared, (r) => r.status?.state === "Deleting");
    } finally {
      await cr.cleanup();
    }

    // The account's controller did (part of) this work itself: events under its identity.
    const identity = logLines(controller).find((l) =>
      l.msg.startsWith("successfully acquired lease"),
    )?.identity;
    assert.ok(identity, "the controller logged its leader identity");
    const own = (await f.client.list<KubeEvent>(CoreTypes.event, { namespace: ns })).items.filter(
      (e) => e.reportingInstance === identity,
    );
    assert.ok(own.length > 0, "events written by the ServiceAccount's controller");

    assertAlive(controller);
    const forbidden = controller
      .output()
      .split("\n")
      .filter((line) => /forbidden|"status":403/i.test(line));
    assert.deepEqual(forbidden, [], "no forbidden errors in the controller's log");
    assert.equal(
      logLines(controller).filter((l) => l.msg === "starting controller").length,
      1,
      "one start, no restart",
    );
    assert.equal(await controller.kill("SIGTERM"), 0, "graceful stop");
  });

  it("with exactly the shipped RBAC: serves a Cluster API claim (IPAddress, finalizers, status) and releases it", async (t) => {
    const ns = await cluster.createNamespace("lp-capi");
    const f = ipamFixture(cluster, ns);
    fixtures.push(f);
    await installClusterApiCrds(cluster);
    const controller = await startController(t, ns, isolatedRbac(ns));
    const claims = claimFixture(f.client, ns);
    await f.range("pool", { ranges: ["10.81.0.0/24"] });
    await claims.cluster("c1");
    await claims.claim("claim", { name: "pool" }, { clusterName: "c1" });
    const claim = await claims.ready("claim");
    assert.deepEqual(claim.status?.addressRef, { name: "claim" });
    const address = await claims.getAddress("claim");
    assert.equal(address?.spec.address, "10.81.0.0");
    // blockOwnerDeletion on the owner reference to the claim: granted by ipaddressclaims/finalizers.
    assert.equal(address?.metadata.ownerReferences?.[0]?.blockOwnerDeletion, true);
    await assertNoProblems(f, true);
    await claims.deleteClaim("claim");
    await claims.gone("claim");
    assert.equal(await claims.getAddress("claim"), undefined);
    await f.rangeSettled("pool", (r) => r.status?.allocated === "0");
    assertAlive(controller);
    const forbidden = controller
      .output()
      .split("\n")
      .filter((line) => /forbidden|"status":403/i.test(line));
    assert.deepEqual(forbidden, [], "no forbidden errors in the controller's log");
  });

  it("without create on ipamallocations: a clear error on the request and in the log, backoff, recovery", async (t) => {
    const ns = await cluster.createNamespace("lp-denied");
    const f = ipamFixture(cluster, ns);
    fixtures.push(f);
    const controller = await startController(
      t,
      ns,
      isolatedRbac(ns, withoutVerb("ipamallocations", "create")),
    );

    // A request the controller judged before its range reached the cache (Invalid: not found): once
    // the range is there, the refused write says forbidden, and the stale Invalid goes.
    await f.request("early", { ipam: { name: "pool" } });
    await f.settled(
      "early",
      (r) => r.status?.state === "Invalid" && /not found/.test(r.status.message ?? ""),
    );
    await f.range("pool", { ranges: ["10.81.0.0/24"], chunkSize: 28 });
    await f.request("blocked", { ipam: { name: "pool" } });
    const key = `${ns}/blocked`;
    const permission = /cannot create resource "ipamallocations" in API group "ipam\.mandelsoft\.org"/;
    const early = await f.settled("early", (r) => r.status?.message?.startsWith("forbidden: ") ?? false);
    assert.match(early.status?.message ?? "", permission);
    assert.equal(early.status?.state, undefined, "the earlier Invalid is gone");
    assert.equal(early.status?.conditions?.find((c) => c.type === "Ready")?.reason, "Forbidden");

    // On the object: status message and Ready condition (reason Forbidden), nothing allocated.
    const blocked = await f.settled("blocked", (r) => r.status?.message?.startsWith("forbidden: ") ?? false);
    assert.match(blocked.status?.message ?? "", permission);
    assert.equal(blocked.status?.cidr, undefined);
    assert.equal(blocked.status?.state, undefined, "not allocated (no state yet)");
    const condition = blocked.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(condition?.status, "False");
    assert.equal(condition?.reason, "Forbidden");
    assert.match(condition?.message ?? "", permission);
    // … and a Warning event about it.
    await eventually(async () => {
      const events = await eventsAbout(f, blocked);
      const warning = events.find((e) => e.reason === "Forbidden");
      assert.equal(warning?.type, "Warning", JSON.stringify(events));
      assert.match(warning?.note ?? "", permission);
    });

    // In the log: the 403 with verb and resource, retried with a growing backoff.
    const failures = () =>
      logLines(controller).filter((l) => l.msg === "reconcile failed; will retry" && l.key === key);
    // Ten failures take at least 5 ms · (2^9 − 1) ≈ 2.5 s of backoff: a window long enough to tell.
    await eventually(() => assert.ok(failures().length >= 10, `${failures().length} failures so far`), {
      timeoutMs: 120_000,
      intervalMs: 100,
    });
    const seen = failures();
    for (const line of seen) {
      assert.equal(line.level, "error");
      assert.equal(line.error?.status, 403);
      assert.equal(line.error?.reason, "Forbidden");
      assert.match(line.error?.message ?? "", permission);
    }
    // With exponential backoff the n-th failure comes at least 5 ms · (2^(n−1) − 1) after the first,
    // so n ≤ 1 + log2(window / 5 ms + 1). A few extra attempts are allowed for the wake-ups that
    // events legitimately cause (the range appearing); a spinning controller is far above the bound.
    const first = Date.parse(seen[0]?.ts ?? "");
    const last = Date.parse(seen[seen.length - 1]?.ts ?? "");
    const bound = 1 + Math.log2((last - first) / BASE_BACKOFF_MS + 1) + 3;
    assert.ok(
      seen.length <= bound,
      `${seen.length} failed attempts in ${last - first} ms: more than exponential backoff allows (${bound.toFixed(1)})`,
    );
    const retries = seen.map((l) => l.retries ?? 0);
    assert.deepEqual(
      retries,
      [...retries].sort((x, y) => x - y),
      "the retry count only grows",
    );
    // Same process all along: alive, started once, still not allocated.
    assertAlive(controller);
    assert.equal(logLines(controller).filter((l) => l.msg === "starting controller").length, 1);
    assert.equal((await f.getRequest("blocked"))?.status?.cidr, undefined);
    assert.deepEqual(await allocationsIn(f), []);

    // Grant the permission again: the next retry allocates and the message goes away.
    await cluster.applyManifests(isolatedRbac(ns).filter((o) => o.kind === "ClusterRole"));
    // The next retry comes after the backoff reached so far (≈ 5 s after ten failures).
    const done = await eventually(
      async () => {
        const r = await f.getRequest("blocked");
        assert.ok(r && ready(r), `not allocated yet: ${JSON.stringify(r?.status)}`);
        return r;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    assert.equal(done.status?.message, "");
    assert.equal(done.status?.conditions?.find((c) => c.type === "Ready")?.reason, "Allocated");
    await assertNoProblems(f, true);
    assertAlive(controller);

    await f.settled("early", ready);
    await f.deleteRequest("blocked");
    await f.deleteRequest("early");
    await gone(f, "request", "blocked");
    await gone(f, "request", "early");
    await f.deleteRange("pool");
    await gone(f, "range", "pool");
    assert.equal(await controller.kill("SIGTERM"), 0, "graceful stop");
  });
});

// The reporting itself, without a cluster: what the request reconciler does with a 403.
describe("a 403 while reconciling a request", () => {
  const forbidden = () =>
    new ApiError({
      status: 403,
      reason: "Forbidden",
      message:
        'ipamallocations.ipam.mandelsoft.org is forbidden: User "sa" cannot create resource "ipamallocations"',
    });
  const range: IPAMRange = {
    apiVersion: API_VERSION,
    kind: "IPAMRange",
    metadata: { namespace: "ns", name: "pool", uid: "range-uid", generation: 1 },
    spec: { ranges: ["10.9.0.0/24"], chunkSize: 28 },
  };
  const request = (status?: IPAMRequestStatus): IPAMRequest => ({
    apiVersion: API_VERSION,
    kind: "IPAMRequest",
    metadata: {
      namespace: "ns",
      name: "r",
      uid: "request-uid",
      generation: 1,
      resourceVersion: "42",
      finalizers: ["mandelsoft.org/ipam"],
    },
    spec: { ipam: { name: "pool" } },
    ...(status ? { status } : {}),
  });

  function run(r: IPAMRequest, statusWrite: () => Promise<IPAMRequest>) {
    const writes: { status: IPAMRequestStatus; resourceVersion: string | undefined }[] = [];
    const events: { type: string; reason: string; note: string }[] = [];
    const fail = () => Promise.reject(forbidden());
    const controller = fakeController(
      { ranges: [range], requests: [r] },
      {
        createAllocation: fail,
        deleteAllocation: fail,
        getRequest: async () => r,
        patchRequestStatus: (_request, status, resourceVersion) => {
          writes.push({ status, resourceVersion });
          return statusWrite();
        },
      },
      {
        events: { emit: (_o, type, reason, note) => events.push({ type, reason, note }) },
        now: () => new Date("2030-01-01T00:00:00Z"),
      },
    );
    controller.bootstrap();
    return { controller, writes, events };
  }

  it("clears a state judged earlier (Invalid while the range was not cached): not allocated, no state", async () => {
    const r = request({ state: "Invalid", message: "IPAMRange ns/pool not found" });
    const { controller, writes } = run(r, async () => r);
    await assert.rejects(controller.reconcileRequest("ns/r"));
    assert.equal(writes.length, 1);
    assert.equal(writes[0]?.status.state, undefined);
    assert.match(writes[0]?.status.message ?? "", /^forbidden: /);
  });

  it("reports it on the request (guarded by its resourceVersion) and as a Warning, and still fails", async () => {
    const r = request();
    const { controller, writes, events } = run(r, async () => r);
    await assert.rejects(
      controller.reconcileRequest("ns/r"),
      (err: unknown) => (err as ApiError).status === 403,
    );
    assert.equal(writes.length, 1);
    const write = writes[0];
    assert.equal(write?.resourceVersion, "42", "never overwrites a newer status");
    assert.equal(write?.status.state, undefined, "not allocated: no state is claimed");
    assert.match(write?.status.message ?? "", /^forbidden: .*cannot create resource "ipamallocations"/);
    const ready = write?.status.conditions?.find((c) => c.type === "Ready");
    assert.deepEqual([ready?.status, ready?.reason], ["False", "Forbidden"]);
    assert.deepEqual(
      events.map((e) => [e.type, e.reason]),
      [["Warning", "Forbidden"]],
    );
  });

  it("says it once: no second write or event while the message stands", async () => {
    const message = `forbidden: ${forbidden().message}`;
    const r = request({ message });
    const { controller, writes, events } = run(r, async () => r);
    await assert.rejects(controller.reconcileRequest("ns/r"));
    assert.deepEqual([writes.length, events.length], [0, 0]);
  });

  it("a refused report (e.g. 409: the request changed meanwhile) is dropped silently: no event", async () => {
    const r = request();
    const { controller, writes, events } = run(r, () =>
      Promise.reject(new ApiError({ status: 409, reason: "Conflict" })),
    );
    await assert.rejects(
      controller.reconcileRequest("ns/r"),
      (err: unknown) => (err as ApiError).status === 403,
    );
    assert.deepEqual([writes.length, events.length], [1, 0]);
  });
});
