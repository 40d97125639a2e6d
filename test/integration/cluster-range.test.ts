// ClusterIPAMRange (semantics §7, second half) against a real API server, with the controller running
// in this process: requests from several namespaces on one cluster-scoped pool, consent by namespace
// labels (granted, refused, withdrawn), spec.ipam.kind, the records in the cluster allocation
// namespace, usage in status and columns, deletion, kubectl ipam and kubipam/client.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { clusterPool } from "../../src/api/pool-ref.ts";
import { type IPAMAllocation, type IPAMRequest, ipamAllocationResource } from "../../src/api/types.ts";
import { recordName } from "../../src/api/validation.ts";
import { run } from "../../src/cli/kubectl-ipam.ts";
import { releaseAddress, requestAddress } from "../../src/client/index.ts";
import { ApiError } from "../../src/runtime/kube.ts";
import { type ClusterRangeFixture, clusterRangeFixture } from "../harness/cluster-ranges.ts";
import { eventually, invariantsHold, type TestCluster, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

const CLUSTER_NS = "kube-system";
const TEAM = { matchLabels: { "kubipam-test/team": "blue" } };

let cluster: TestCluster;
let controller: RunningController;
let f: IpamFixture;
let cr: ClusterRangeFixture;
/** Namespaces: a and b carry the team label, c does not (yet). */
let a: string;
let b: string;
let c: string;
let pool: string;

const ready = (r: IPAMRequest) => r.status?.state === "Ready";
const condition = (r: IPAMRequest | undefined, type: string) =>
  r?.status?.conditions?.find((x) => x.type === type);

function invariants(): Promise<void> {
  return invariantsHold(f.client, { namespaces: [a, b, c], clusterRanges: [pool] });
}

async function clusterRecords(name: string): Promise<IPAMAllocation[]> {
  const list = await f.client.list<IPAMAllocation>(ipamAllocationResource, { namespace: CLUSTER_NS });
  return list.items.filter((x) => x.spec.range.kind === "ClusterIPAMRange" && x.spec.range.name === name);
}

async function ipam(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await run([...argv, "--kubeconfig", cluster.kubeconfigPath], {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

before(async () => {
  cluster = await useCluster();
  a = await cluster.createNamespace("cr-a");
  b = await cluster.createNamespace("cr-b");
  c = await cluster.createNamespace("cr-c");
  f = ipamFixture(cluster, a);
  cr = clusterRangeFixture(f.client);
  await cr.label(a, { "kubipam-test/team": "blue" });
  await cr.label(b, { "kubipam-test/team": "blue" });
  controller = await runControllerInProcess(cluster);
  pool = (await cr.create("shared", { ranges: ["10.200.0.0/16"], chunkSize: 24, namespaceSelector: TEAM }))
    .metadata.name as string;
});

after(async () => {
  // Cluster-scoped objects outlive this file's namespaces: remove them while the controller runs.
  try {
    await cr?.cleanup();
  } finally {
    await controller?.stop();
    f?.client.close();
  }
});

describe("ClusterIPAMRange", { concurrency: false }, () => {
  it("serves requests of two admitted namespaces from one pool, without overlap", async () => {
    await f.request("web", { ipam: { kind: "ClusterIPAMRange", name: pool } }, a);
    await f.request("db", { ipam: { kind: "ClusterIPAMRange", name: pool } }, b);
    const web = await f.settled("web", ready, a);
    const db = await f.settled("db", ready, b);
    assert.deepEqual([web.status?.cidr, db.status?.cidr].sort(), ["10.200.0.0/24", "10.200.1.0/24"]);
    assert.equal(condition(web, "Admitted")?.status, "True");
    const range = await cr.settled(pool, (r) => r.status?.allocated === "512");
    assert.equal(range.status?.state, "Ready");
    assert.equal(range.status?.size, "65536");
    assert.equal(range.status?.free, String(65536 - 512));
    assert.ok(range.metadata.finalizers?.includes("mandelsoft.org/ipam"), "the range carries the finalizer");
    await invariants();
  });

  it("keeps the records in the cluster allocation namespace, named apart from an IPAMRange's", async () => {
    const records = await clusterRecords(pool);
    assert.deepEqual(records.map((x) => x.spec.cidr).sort(), ["10.200.0.0/24", "10.200.1.0/24"]);
    for (const record of records) {
      assert.equal(record.metadata.name, recordName(clusterPool(pool), record.spec.cidr));
      assert.match(record.metadata.name ?? "", new RegExp(`^${pool}\\.cluster-10-200-[01]-0-24$`));
      assert.equal(record.metadata.labels?.["ipam.mandelsoft.org/range-kind"], "ClusterIPAMRange");
      assert.ok(record.metadata.finalizers?.includes("ipam.mandelsoft.org/held"));
    }
    // An IPAMRange of the same name in that namespace allocates the same block: its own record.
    await f.range(pool, { ranges: ["10.200.0.0/16"], chunkSize: 24 }, CLUSTER_NS);
    await f.request(`${pool}-local`, { ipam: { name: pool } }, CLUSTER_NS);
    const local = await f.settled(`${pool}-local`, ready, CLUSTER_NS);
    assert.equal(local.status?.cidr, "10.200.0.0/24");
    const own = await f.client.get<IPAMAllocation>(ipamAllocationResource, `${pool}.10-200-0-0-24`, {
      namespace: CLUSTER_NS,
    });
    assert.equal(own.spec.range.kind, "IPAMRange");
    assert.equal((await clusterRecords(pool)).length, 2, "the cluster range's records are untouched");
    await f.deleteRequest(`${pool}-local`, CLUSTER_NS);
    await f.deleteRange(pool, CLUSTER_NS);
    await eventually(async () => assert.equal(await f.getRange(pool, CLUSTER_NS), undefined), {
      timeoutMs: 30_000,
    });
  });

  it("refuses a namespace the selector does not match, naming both, and admits it once relabelled", async () => {
    await f.request("outsider", { ipam: { kind: "ClusterIPAMRange", name: pool } }, c);
    const refused = await f.settled("outsider", (r) => r.status?.state === "Invalid", c);
    assert.equal(
      refused.status?.message,
      `ClusterIPAMRange ${pool} does not admit requests from namespace ${c}: its spec.namespaceSelector does not match the namespace's labels`,
    );
    await cr.label(c, { "kubipam-test/team": "blue" });
    const admitted = await f.settled("outsider", ready, c);
    assert.equal(admitted.status?.cidr, "10.200.2.0/24");
    await invariants();
  });

  it("withdraws consent when a namespace loses its label: holders stay Ready with Admitted=False", async () => {
    await cr.label(b, { "kubipam-test/team": null });
    const db = await f.settled("db", (r) => condition(r, "Admitted")?.status === "False", b);
    assert.equal(db.status?.state, "Ready");
    assert.equal(condition(db, "Admitted")?.reason, "ConsentWithdrawn");
    assert.match(db.status?.message ?? "", new RegExp(`does not admit requests from namespace ${b}`));
    await f.request("late", { ipam: { kind: "ClusterIPAMRange", name: pool } }, b);
    await f.settled("late", (r) => r.status?.state === "Invalid", b);
    await invariants();
    // Consent given again: Admitted=True, the waiting request is served.
    await cr.label(b, { "kubipam-test/team": "blue" });
    await f.settled("db", (r) => condition(r, "Admitted")?.status === "True", b);
    await f.settled("late", ready, b);
    await invariants();
  });

  it("defaults spec.ipam.kind to IPAMRange and rejects a namespace with ClusterIPAMRange at admission", async () => {
    await f.request("no-kind", { ipam: { name: pool } }, a);
    const noKind = await f.settled("no-kind", (r) => r.status?.state === "Invalid", a);
    assert.equal(noKind.status?.message, `IPAMRange ${a}/${pool} not found`);
    await assert.rejects(
      f.request("with-ns", { ipam: { kind: "ClusterIPAMRange", name: pool, namespace: a } }, a),
      (err: unknown) =>
        err instanceof ApiError &&
        err.status === 422 &&
        err.message.includes("spec.ipam.namespace must be empty for a ClusterIPAMRange"),
    );
    await f.deleteRequest("no-kind", a);
  });

  it("shows usage in kubectl get columns and in kubectl ipam (a cluster range by name alone)", async () => {
    await cr.settled(pool, (r) => r.status?.allocated === "1024");
    const get = spawnSync(
      join(cluster.binDir, "kubectl"),
      [
        "--kubeconfig",
        cluster.kubeconfigPath,
        "get",
        "clusteripamranges",
        pool,
        "--no-headers",
        "-o",
        "wide",
      ],
      { encoding: "utf8" },
    );
    assert.equal(get.status, 0, get.stderr);
    const columns = get.stdout.trim().split(/\s+/);
    // NAME MODE STATE ALLOCATED SIZE FREE RANGES MESSAGE(empty) AGE
    assert.deepEqual(columns.slice(0, 7), [
      pool,
      "FirstMatch",
      "Ready",
      "1024",
      "65536",
      "64512",
      '["10.200.0.0/16"]',
    ]);

    const usage = await ipam("usage", pool, "-n", a, "-o", "json");
    assert.equal(usage.code, 0, usage.stderr);
    const row = (JSON.parse(usage.stdout) as { items: Record<string, unknown>[] }).items[0];
    assert.equal(row?.kind, "ClusterIPAMRange");
    assert.equal(row?.allocated, "1024");
    assert.equal(row?.allocations, 4);
    const table = await ipam("usage", "-n", c);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`ClusterIPAMRange\\s+${pool}\\s+IPv4\\s+65536\\s+1024\\s+64512`));

    const show = await ipam("show", `ciprange/${pool}`, "-o", "json");
    assert.equal(show.code, 0, show.stderr);
    const view = JSON.parse(show.stdout) as {
      kind: string;
      blocks: { cidr: string; request: { namespace: string } }[];
    };
    assert.equal(view.kind, "ClusterIPAMRange");
    // web and db were created together, so either may hold 10.200.0.0/24: expect what they hold.
    const holders = [
      [(await f.getRequest("web", a))?.status?.cidr, a],
      [(await f.getRequest("db", b))?.status?.cidr, b],
      ["10.200.2.0/24", c],
      ["10.200.3.0/24", b],
    ];
    assert.deepEqual(
      view.blocks.map((x) => `${x.cidr} ${x.request.namespace}`),
      holders.map(([cidr, ns]) => `${cidr} ${ns}`).sort(),
      "every block with its holder's namespace, in address order",
    );
    for (const ns of [a, b, c]) {
      const check = await ipam("check", "-n", ns);
      assert.equal(check.code, 0, check.stdout + check.stderr);
    }
    const all = await ipam("check", "-A");
    assert.doesNotMatch(all.stdout, new RegExp(pool), all.stdout);
  });

  it("kubipam/client requests and releases an address of a cluster range", async () => {
    const { cidr } = await requestAddress({
      client: f.client,
      namespace: a,
      name: "via-client",
      range: { kind: "ClusterIPAMRange", name: pool },
      size: 28,
    });
    assert.match(cidr, /^10\.200\.\d+\.\d+\/28$/);
    await releaseAddress({ client: f.client, namespace: a, name: "via-client", wait: true });
    await cr.settled(pool, (r) => r.status?.allocated === "1024");
    await invariants();
  });

  it("rebuilds a cluster range's blocks from its records after a restart: nothing twice", async () => {
    await controller.stop();
    controller = await runControllerInProcess(cluster);
    await f.request("after-restart", { ipam: { kind: "ClusterIPAMRange", name: pool } }, c);
    const fresh = await f.settled("after-restart", ready, c);
    assert.equal(fresh.status?.cidr, "10.200.4.0/24");
    await cr.settled(pool, (r) => r.status?.allocated === "1280");
    await invariants();
    await f.deleteRequest("after-restart", c);
    await cr.settled(pool, (r) => r.status?.allocated === "1024");
  });

  it("has the IPAMRange's pool fields too: exclusions and gateway skipped, counted apart", async () => {
    const edge = (
      await cr.create("edge", {
        ranges: ["10.201.0.0/29"],
        exclude: ["10.201.0.2-10.201.0.3"],
        gateway: "10.201.0.1",
      })
    ).metadata.name as string;
    const got: string[] = [];
    for (const n of [1, 2, 3, 4, 5]) {
      await f.request(`edge-${n}`, { ipam: { kind: "ClusterIPAMRange", name: edge }, size: 32 }, a);
      got.push((await f.settled(`edge-${n}`, ready, a)).status?.cidr ?? "");
    }
    assert.deepEqual(got, [
      "10.201.0.0/32",
      "10.201.0.4/32",
      "10.201.0.5/32",
      "10.201.0.6/32",
      "10.201.0.7/32",
    ]);
    await f.request("edge-gw", { ipam: { kind: "ClusterIPAMRange", name: edge }, request: "10.201.0.1" }, a);
    const gw = await f.settled("edge-gw", (r) => r.status?.state === "Invalid", a);
    assert.equal(gw.status?.message, "10.201.0.1/32 overlaps excluded gateway 10.201.0.1");
    const range = await cr.settled(edge, (r) => r.status?.allocated === "5");
    assert.deepEqual(
      [range.status?.size, range.status?.free, range.status?.excludedAddresses],
      ["8", "0", "3"],
    );
    await invariantsHold(f.client, { namespaces: [a], clusterRanges: [edge] });
  });

  it("waits for every holder before a deleted range goes", async () => {
    await cr.delete(pool);
    const deleting = await cr.settled(pool, (r) => r.status?.state === "Deleting");
    assert.equal(deleting.status?.message, "waiting for pending requests to be deleted");
    await f.request("too-late", { ipam: { kind: "ClusterIPAMRange", name: pool } }, a);
    const late = await f.settled("too-late", (r) => r.status?.state === "Invalid", a);
    assert.equal(late.status?.message, `ClusterIPAMRange ${pool} is being deleted`);
    await f.deleteRequest("too-late", a);
    for (const [name, ns] of [
      ["web", a],
      ["db", b],
      ["late", b],
    ] as const) {
      await f.deleteRequest(name, ns);
    }
    assert.ok(await cr.get(pool), "still held by the request of namespace c");
    await f.deleteRequest("outsider", c);
    await cr.gone(pool);
    assert.deepEqual(await clusterRecords(pool), []);
  });
});
