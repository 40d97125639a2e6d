// The contract (shared/docs/semantics.md) proven against a real API server, with the controller
// running in this process.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ipamAllocationResource, ipamRangeResource, ipamRequestResource } from "../../src/api/types.ts";
import { eventually, invariantsHold, type TestCluster, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let cluster: TestCluster;
let controller: RunningController;
let f: IpamFixture;
const namespaces: string[] = [];

const ready = (r: { status?: { state?: string } }) => r.status?.state === "Ready";
const stateIs = (s: string) => (r: { status?: { state?: string } }) => r.status?.state === s;

function assertInvariants(allReady = false): Promise<void> {
  return invariantsHold(f.client, { namespaces, allReady });
}

before(async () => {
  cluster = await useCluster();
  const ns = await cluster.createNamespace("ctl");
  namespaces.push(ns, await cluster.createNamespace("ctl-other"));
  f = ipamFixture(cluster, ns);
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  f?.client.close();
});

describe("README example and policies", () => {
  it("allocates 192.168.0.0/24 then 192.168.1.0/24 with chunkSize 24", async () => {
    await f.range("readme", { chunkSize: 24, ranges: ["192.168.0.0/16"] });
    await f.request("readme-a", { ipam: { name: "readme" } });
    const a = await f.settled("readme-a", ready);
    assert.equal(a.status?.cidr, "192.168.0.0/24");
    assert.equal(a.status?.message, "");
    await f.request("readme-b", { ipam: { name: "readme" } });
    const b = await f.settled("readme-b", ready);
    assert.equal(b.status?.cidr, "192.168.1.0/24");
    const range = await f.rangeSettled("readme", (r) => r.status?.allocated === "512");
    assert.equal(range.status?.state, "Ready");
    assert.equal(range.status?.size, "65536");
    assert.equal(range.status?.free, String(65536 - 512));
    const fresh = await f.getRequest("readme-a");
    // Two writes per allocation: the record and the status; no finalizer on the request.
    assert.deepEqual(fresh?.metadata.finalizers ?? [], [], "no finalizer on the request");
    const cond = fresh?.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(cond?.status, "True");
  });

  it("FirstMatch hands out the lone /32 first, then from the lowest address", async () => {
    await f.range("fm", { ranges: ["192.168.0.10-192.168.0.20"] });
    const got: string[] = [];
    for (const n of [1, 2, 3]) {
      await f.request(`fm-${n}`, { ipam: { name: "fm" } });
      got.push((await f.settled(`fm-${n}`, ready)).status?.cidr ?? "");
    }
    assert.deepEqual(got, ["192.168.0.20/32", "192.168.0.10/32", "192.168.0.11/32"]);
  });

  it("RoundRobin moves on after a release and persists its cursor", async () => {
    await f.range("rr", { ranges: ["10.0.0.0/8"], mode: "RoundRobin" });
    const got: string[] = [];
    // The cursor each allocation persists (the address after it). The range's status follows an
    // allocation after a delay (debounced), so each round waits for its own cursor; an earlier
    // round's cursor never passes for the last one.
    const cursors = ["10.128.0.0/9", "11.0.0.0/9", "10.128.0.0/9"];
    for (const [i, cursor] of cursors.entries()) {
      const name = `rr-${i + 1}`;
      await f.request(name, { ipam: { name: "rr" }, size: 9 });
      got.push((await f.settled(name, ready)).status?.cidr ?? "");
      const range = await f.rangeSettled("rr", (r) => r.status?.roundRobin?.join() === cursor);
      assert.deepEqual(range.status?.roundRobin, [cursor]);
      await f.deleteRequest(name);
      await eventually(async () => assert.equal(await f.getRequest(name), undefined));
    }
    assert.deepEqual(got, ["10.0.0.0/9", "10.128.0.0/9", "10.0.0.0/9"]);
  });

  it("IPv6 and request expressions", async () => {
    await f.range("v6", { ranges: ["fd00::/48"], chunkSize: 64 });
    await f.request("v6-a", { ipam: { name: "v6" } });
    assert.equal((await f.settled("v6-a", ready)).status?.cidr, "fd00::/64");
    await f.request("v6-idx", { ipam: { name: "v6" }, request: "3/64" });
    assert.equal((await f.settled("v6-idx", ready)).status?.cidr, "fd00:0:0:3::/64");
    await f.request("v6-hosts", { ipam: { name: "v6" }, request: "%8" });
    assert.equal((await f.settled("v6-hosts", ready)).status?.cidr, "fd00:0:0:1::/120");
    await f.range("v4x", { ranges: ["10.1.0.0/16"] });
    await f.request("v4-count", { ipam: { name: "v4x" }, request: "#257" });
    assert.equal((await f.settled("v4-count", ready)).status?.cidr, "10.1.0.0/23");
    await f.request("v4-past", { ipam: { name: "v4x" }, request: "300/24" });
    const past = await f.settled("v4-past", stateIs("Invalid"));
    assert.match(past.status?.message ?? "", /300/);
  });

  it("dedicated CIDR and IP: reserved, busy, outside, host bits masked", async () => {
    await f.range("ded", { ranges: ["10.2.0.0/16"] });
    await f.request("ded-cidr", { ipam: { name: "ded" }, request: "10.2.3.77/24" });
    assert.equal((await f.settled("ded-cidr", ready)).status?.cidr, "10.2.3.0/24");
    await f.request("ded-ip", { ipam: { name: "ded" }, request: "10.2.9.9" });
    assert.equal((await f.settled("ded-ip", ready)).status?.cidr, "10.2.9.9/32");
    await f.request("ded-busy", { ipam: { name: "ded" }, request: "10.2.3.0/24" });
    const busy = await f.settled("ded-busy", stateIs("Busy"));
    assert.equal(busy.status?.message, "10.2.3.0/24 already busy");
    await f.request("ded-out", { ipam: { name: "ded" }, request: "10.3.0.0/24" });
    const out = await f.settled("ded-out", stateIs("Invalid"));
    assert.match(out.status?.message ?? "", /outside/);
    // The busy one is served once the holder goes.
    await f.deleteRequest("ded-cidr");
    assert.equal((await f.settled("ded-busy", ready)).status?.cidr, "10.2.3.0/24");
  });
});

describe("states and messages", () => {
  it("invalid ranges say why, and recover when fixed", async () => {
    await f.range("mixed", { ranges: ["10.0.0.0/8", "fd00::/8"] });
    const mixed = await f.rangeSettled("mixed", stateIs("Invalid"));
    assert.match(mixed.status?.message ?? "", /IPv4|IPv6|family/);
    await f.range("backwards", { ranges: ["10.0.0.9-10.0.0.1"] });
    const back = await f.rangeSettled("backwards", stateIs("Invalid"));
    assert.equal(back.status?.message, 'invalid ip range "10.0.0.9-10.0.0.1": end of range before start');
    await f.range("chunk", { ranges: ["10.0.0.0/8"], chunkSize: 33 });
    const chunk = await f.rangeSettled("chunk", stateIs("Invalid"));
    assert.equal(chunk.status?.message, "chunk size 33 too large: network 32");

    await f.request("on-invalid", { ipam: { name: "backwards" } });
    const req = await f.settled("on-invalid", stateIs("Invalid"));
    assert.equal(
      req.status?.message,
      `IPAMRange ${f.namespace}/backwards not valid: invalid ip range "10.0.0.9-10.0.0.1": end of range before start`,
    );
    await f.client.patch(
      ipamRangeResource,
      "backwards",
      { spec: { ranges: ["10.0.0.1-10.0.0.9"] } },
      { namespace: f.namespace, patchType: "merge" },
    );
    await f.rangeSettled("backwards", ready);
    assert.equal((await f.settled("on-invalid", ready)).status?.cidr, "10.0.0.1/32");
  });

  it("request errors: missing name, missing range, sizes", async () => {
    await f.request("no-name", { ipam: {} });
    assert.equal(
      (await f.settled("no-name", stateIs("Invalid"))).status?.message,
      "IPAMRange object not specified",
    );
    await f.request("late", { ipam: { name: "appears-later" }, size: 30 });
    const late = await f.settled("late", stateIs("Invalid"));
    assert.equal(late.status?.message, `IPAMRange ${f.namespace}/appears-later not found`);
    await f.range("appears-later", { ranges: ["10.9.0.0/24"] });
    assert.equal((await f.settled("late", ready)).status?.cidr, "10.9.0.0/30");
    await f.request("too-big", { ipam: { name: "appears-later" }, size: 33 });
    assert.equal(
      (await f.settled("too-big", stateIs("Invalid"))).status?.message,
      "size 33 too large: network 32",
    );
    await f.request("never-fits", { ipam: { name: "appears-later" }, size: 16 });
    assert.equal((await f.settled("never-fits", stateIs("Invalid"))).status?.state, "Invalid");
  });

  it("the API server rejects an edited request spec", async () => {
    await f.range("imm", { ranges: ["10.10.0.0/24"] });
    await f.request("imm-a", { ipam: { name: "imm" }, size: 28 });
    await f.settled("imm-a", ready);
    await assert.rejects(
      f.client.patch(ipamRequestResource, "imm-a", { spec: { size: 27 } }, { namespace: f.namespace }),
      (err: { status?: number; message?: string }) =>
        err.status === 422 && /immutable/.test(err.message ?? ""),
    );
  });
});

describe("lifecycle", () => {
  it("exhaustion makes requests Busy and a release wakes them", async () => {
    await f.range("tiny", { ranges: ["10.20.0.0/31"] });
    for (const n of [1, 2, 3]) await f.request(`tiny-${n}`, { ipam: { name: "tiny" } });
    const states = await eventually(async () => {
      const all = await Promise.all([1, 2, 3].map((n) => f.getRequest(`tiny-${n}`)));
      const s = all.map((r) => r?.status?.state ?? "").sort();
      assert.deepEqual(s, ["Busy", "Ready", "Ready"]);
      return all;
    });
    const busy = states.find((r) => r?.status?.state === "Busy");
    assert.equal(busy?.status?.message, "allocation with size 32 failed");
    const holder = states.find((r) => r?.status?.state === "Ready");
    await f.deleteRequest(holder?.metadata.name ?? "");
    const woken = await f.settled(busy?.metadata.name ?? "", ready);
    assert.equal(woken.status?.cidr, holder?.status?.cidr);
  });

  it("range deletion waits for its requests", async () => {
    await f.range("doomed", { ranges: ["10.30.0.0/24"] });
    await f.request("doomed-a", { ipam: { name: "doomed" } });
    await f.settled("doomed-a", ready);
    await f.rangeSettled("doomed", (r) => r.metadata.finalizers?.includes("mandelsoft.org/ipam") ?? false);
    await f.deleteRange("doomed");
    const deleting = await f.rangeSettled("doomed", stateIs("Deleting"));
    assert.equal(deleting.status?.message, "waiting for pending requests to be deleted");
    await f.request("doomed-b", { ipam: { name: "doomed" } });
    assert.equal((await f.settled("doomed-b", stateIs("Invalid"))).status?.cidr, undefined);
    await f.deleteRequest("doomed-a");
    await f.deleteRequest("doomed-b");
    await eventually(async () => assert.equal(await f.getRange("doomed"), undefined), { timeoutMs: 20_000 });
  });

  it("live extension and shrinking of a range", async () => {
    await f.range("live", { ranges: ["10.40.0.0/31"] });
    await f.request("live-a", { ipam: { name: "live" } });
    await f.request("live-b", { ipam: { name: "live" } });
    await f.request("live-c", { ipam: { name: "live" } });
    await eventually(async () => {
      const s = await Promise.all(["a", "b", "c"].map((n) => f.getRequest(`live-${n}`)));
      assert.equal(s.filter((r) => r?.status?.state === "Busy").length, 1);
    });
    await f.client.patch(
      ipamRangeResource,
      "live",
      { spec: { ranges: ["10.40.0.0/31", "10.40.1.0/32"] } },
      { namespace: f.namespace, patchType: "merge" },
    );
    await eventually(async () => {
      const s = await Promise.all(["a", "b", "c"].map((n) => f.getRequest(`live-${n}`)));
      assert.deepEqual(
        s.map((r) => r?.status?.state),
        ["Ready", "Ready", "Ready"],
      );
    });
    // Shrink: the block outside stays allocated and flagged.
    await f.client.patch(
      ipamRangeResource,
      "live",
      { spec: { ranges: ["10.40.1.0/32"] } },
      { namespace: f.namespace, patchType: "merge" },
    );
    const range = await f.rangeSettled("live", (r) => (r.status?.pendingRemovals ?? []).length === 2);
    assert.deepEqual(range.status?.pendingRemovals, ["10.40.0.0/32", "10.40.0.1/32"]);
    assert.equal(range.status?.size, "1");
    const flagged = await f.settled("live-a", (r) => /no longer inside/.test(r.status?.message ?? ""));
    assert.equal(flagged.status?.state, "Ready");
    assert.equal(flagged.status?.conditions?.find((c) => c.type === "InRange")?.status, "False");
    await f.deleteRequest("live-a");
    await f.rangeSettled("live", (r) => (r.status?.pendingRemovals ?? []).length === 1);
  });

  it("cross-namespace use needs the range's consent", async () => {
    const other = namespaces[1] as string;
    await f.range("shared", { ranges: ["10.50.0.0/24"] });
    await f.request("foreign", { ipam: { name: "shared", namespace: f.namespace } }, other);
    const refused = await f.settled("foreign", stateIs("Invalid"), other);
    assert.match(refused.status?.message ?? "", /does not admit requests from namespace/);
    await f.client.patch(
      ipamRangeResource,
      "shared",
      { spec: { allowedNamespaces: [other] } },
      { namespace: f.namespace, patchType: "merge" },
    );
    // Consent is a spec change of the range: waiting requests are retried.
    assert.equal((await f.settled("foreign", ready, other)).status?.cidr, "10.50.0.0/32");
    const allocations = await f.client.list(ipamAllocationResource, { namespace: f.namespace });
    assert.ok(
      allocations.items.some((a) => (a as { spec?: { cidr?: string } }).spec?.cidr === "10.50.0.0/32"),
    );
  });

  it("keeps every invariant after all of the above", async () => {
    await assertInvariants();
  });
});
