// §7 pool model v2 on IPAMRange against a real API server: exclude, gateway, reuseCooldownSeconds
// (prefix only feeds Cluster API claims; its validation is unit-tested).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type IPAMRange, type IPAMRequest, ipamRangeResource } from "../../src/api/types.ts";
import { controllerPool } from "../../src/testing/controller-process.ts";
import { eventually, invariantsHold, type TestCluster, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let cluster: TestCluster;
let controller: RunningController | undefined;
let f: IpamFixture;
const pool = controllerPool();

const ready = (r: { status?: { state?: string } }) => r.status?.state === "Ready";
const stateIs = (s: string) => (r: { status?: { state?: string } }) => r.status?.state === s;
const condition = (r: IPAMRequest, type: string) => r.status?.conditions?.find((c) => c.type === type);

before(async () => {
  cluster = await useCluster();
  f = ipamFixture(cluster, await cluster.createNamespace("pool-fields"));
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  f?.client.close();
});

function assertInvariants(): Promise<void> {
  return invariantsHold(f.client, { namespaces: [f.namespace] });
}

async function patchRange(name: string, spec: Partial<IPAMRange["spec"]>): Promise<void> {
  await f.client.patch(ipamRangeResource, name, { spec }, { namespace: f.namespace });
}

async function allocated(name: string, spec: IPAMRequest["spec"]): Promise<string> {
  await f.request(name, spec);
  return (await f.settled(name, ready)).status?.cidr ?? "";
}

async function deleted(name: string): Promise<void> {
  await f.deleteRequest(name);
  await eventually(async () => assert.equal(await f.getRequest(name), undefined));
}

/** The end time of the cooldown of `cidr` in the range's status.cooling. */
async function coolingEnd(range: string, cidr: string): Promise<number> {
  const settled = await f.rangeSettled(range, (r) =>
    (r.status?.cooling ?? []).some((e) => e.startsWith(`${cidr}@`)),
  );
  const entry = (settled.status?.cooling ?? []).find((e) => e.startsWith(`${cidr}@`)) ?? "";
  return Date.parse(entry.slice(entry.indexOf("@") + 1));
}

describe("exclude and gateway", () => {
  it("automatic allocation skips the exclusions and the gateway; usage counts them apart", async () => {
    await f.range("ex", { ranges: ["10.1.0.0/29"], exclude: ["10.1.0.2-10.1.0.3"], gateway: "10.1.0.1" });
    const got: string[] = [];
    for (const n of [1, 2, 3, 4, 5]) got.push(await allocated(`ex-${n}`, { ipam: { name: "ex" }, size: 32 }));
    assert.deepEqual(got, ["10.1.0.0/32", "10.1.0.4/32", "10.1.0.5/32", "10.1.0.6/32", "10.1.0.7/32"]);
    await f.request("ex-6", { ipam: { name: "ex" }, size: 32 });
    const busy = await f.settled("ex-6", stateIs("Busy"));
    assert.equal(busy.status?.message, "allocation with size 32 failed");
    const range = await f.rangeSettled("ex", (r) => r.status?.allocated === "5");
    assert.deepEqual(
      [
        range.status?.size,
        range.status?.free,
        range.status?.excludedAddresses,
        range.status?.coolingAddresses,
      ],
      ["8", "0", "3", "0"],
    );
    await assertInvariants();
  });

  it("an explicit request over an exclusion or the gateway is Invalid and names it", async () => {
    await f.request("ex-on-exclusion", { ipam: { name: "ex" }, request: "10.1.0.3" });
    const a = await f.settled("ex-on-exclusion", stateIs("Invalid"));
    assert.equal(a.status?.message, "10.1.0.3/32 overlaps excluded 10.1.0.2-10.1.0.3");
    await f.request("ex-on-gateway", { ipam: { name: "ex" }, request: "10.1.0.0/30" });
    const b = await f.settled("ex-on-gateway", stateIs("Invalid"));
    assert.match(
      b.status?.message ?? "",
      /^10\.1\.0\.0\/30 overlaps excluded (gateway 10\.1\.0\.1|10\.1\.0\.2-10\.1\.0\.3)$/,
    );
    await f.request("ex-indexed", { ipam: { name: "ex" }, request: "1/32" });
    const c = await f.settled("ex-indexed", stateIs("Invalid"));
    assert.equal(c.status?.message, "10.1.0.1/32 overlaps excluded gateway 10.1.0.1");
  });

  it("a bad exclude entry makes the range Invalid with the message; the API server refuses junk itself", async () => {
    await f.range("bad-ex", { ranges: ["10.9.0.0/24"], exclude: ["10.9.0.9-10.9.0.1"] });
    const range = await f.rangeSettled("bad-ex", stateIs("Invalid"));
    assert.equal(
      range.status?.message,
      'invalid exclude entry "10.9.0.9-10.9.0.1": end of range before start',
    );
    await f.request("bad-ex-1", { ipam: { name: "bad-ex" } });
    const request = await f.settled("bad-ex-1", stateIs("Invalid"));
    assert.equal(
      request.status?.message,
      `IPAMRange ${f.namespace}/bad-ex not valid: invalid exclude entry "10.9.0.9-10.9.0.1": end of range before start`,
    );
    await patchRange("bad-ex", { exclude: ["fd00::1"] });
    const family = await f.rangeSettled("bad-ex", (r) => r.status?.message !== range.status?.message);
    assert.equal(family.status?.message, 'invalid exclude entry "fd00::1": IPv6 but the range is IPv4');
    await assert.rejects(
      f.range("junk-ex", { ranges: ["10.9.1.0/24"], exclude: ["10.9.1.300"] }),
      /invalid exclude entry "10\.9\.1\.300": use a CIDR/,
    );
    await assert.rejects(
      f.range("junk-gw", { ranges: ["10.9.1.0/24"], gateway: "10.9.1.0/24" }),
      /invalid gateway "10\.9\.1\.0\/24": use one IP/,
    );
    await assert.rejects(
      f.range("long-cool", { ranges: ["10.9.1.0/24"], reuseCooldownSeconds: 86401 }),
      /reuseCooldownSeconds/,
    );
    // Fixed, it serves the waiting request (no sticky error).
    await patchRange("bad-ex", { exclude: ["10.9.0.0/25"] });
    assert.equal((await f.settled("bad-ex-1", ready)).status?.cidr, "10.9.0.128/32");
  });

  it("an exclusion added over a live holder acts like a shrink: kept until released, never handed out again", async () => {
    await f.range("late", { ranges: ["10.2.0.0/30"] });
    assert.equal(await allocated("late-1", { ipam: { name: "late" }, request: "10.2.0.1" }), "10.2.0.1/32");
    await patchRange("late", { exclude: ["10.2.0.1"] });
    const flagged = await f.settled("late-1", (r) => condition(r, "InRange")?.status === "False");
    assert.equal(flagged.status?.state, "Ready");
    assert.equal(flagged.status?.cidr, "10.2.0.1/32");
    assert.equal(condition(flagged, "InRange")?.reason, "Excluded");
    assert.equal(
      flagged.status?.message,
      `10.2.0.1/32 overlaps excluded 10.2.0.1 of IPAMRange ${f.namespace}/late; 10.2.0.1/32 stays allocated until this request is deleted`,
    );
    const pending = await f.rangeSettled("late", (r) =>
      (r.status?.pendingRemovals ?? []).includes("10.2.0.1/32"),
    );
    assert.equal(pending.status?.excludedAddresses, "0");
    await assertInvariants();
    await deleted("late-1");
    const after = await f.rangeSettled("late", (r) => (r.status?.pendingRemovals ?? []).length === 0);
    assert.deepEqual([after.status?.excludedAddresses, after.status?.free], ["1", "3"]);
    const got: string[] = [];
    for (const n of [2, 3, 4]) got.push(await allocated(`late-${n}`, { ipam: { name: "late" }, size: 32 }));
    assert.deepEqual(got.sort(), ["10.2.0.0/32", "10.2.0.2/32", "10.2.0.3/32"]);
    await f.request("late-5", { ipam: { name: "late" }, size: 32 });
    await f.settled("late-5", stateIs("Busy"));
    await assertInvariants();
  });
});

describe("reuseCooldownSeconds", () => {
  it("a released block waits out its cooldown; a request Busy only on it becomes Ready when it ends, by itself", async () => {
    await f.range("cool", { ranges: ["10.3.0.0/31"], reuseCooldownSeconds: 4 });
    assert.equal(await allocated("cool-a", { ipam: { name: "cool" }, size: 32 }), "10.3.0.0/32");
    assert.equal(await allocated("cool-b", { ipam: { name: "cool" }, size: 32 }), "10.3.0.1/32");
    await deleted("cool-a");
    const end = await coolingEnd("cool", "10.3.0.0/32");
    await f.request("cool-c", { ipam: { name: "cool" }, size: 32 });
    const busy = await f.settled("cool-c", stateIs("Busy"));
    assert.equal(
      busy.status?.message,
      `allocation with size 32 failed (space is cooling down until ${new Date(end).toISOString()})`,
    );
    const range = await f.rangeSettled("cool", (r) => r.status?.coolingAddresses === "1");
    assert.deepEqual([range.status?.free, range.status?.allocated], ["0", "1"]);
    await assertInvariants();
    // Nothing else happens in the range: the end of the cooldown alone makes it Ready.
    const served = await f.settled("cool-c", ready);
    assert.equal(served.status?.cidr, "10.3.0.0/32");
    const readySince = Date.parse(condition(served, "Ready")?.lastTransitionTime ?? "");
    assert.ok(readySince >= Math.floor(end / 1000) * 1000, "not Ready before the cooldown ended");
    const cooled = await f.rangeSettled("cool", (r) => (r.status?.cooling ?? []).length === 0);
    assert.equal(cooled.status?.coolingAddresses, "0");
    await assertInvariants();
  });

  it("an explicit request takes a cooling block at once", async () => {
    await f.range("hot", { ranges: ["10.5.0.0/31"], reuseCooldownSeconds: 3600 });
    assert.equal(await allocated("hot-a", { ipam: { name: "hot" }, size: 32 }), "10.5.0.0/32");
    await deleted("hot-a");
    await coolingEnd("hot", "10.5.0.0/32");
    // A size request gets the other address, not the cooling one.
    assert.equal(await allocated("hot-b", { ipam: { name: "hot" }, size: 32 }), "10.5.0.1/32");
    assert.equal(await allocated("hot-c", { ipam: { name: "hot" }, request: "10.5.0.0" }), "10.5.0.0/32");
    const range = await f.rangeSettled("hot", (r) => r.status?.allocated === "2");
    assert.deepEqual(range.status?.cooling ?? [], []);
    assert.equal(range.status?.coolingAddresses, "0");
    await assertInvariants();
  });

  it("the cooldown survives a controller restart", async (t) => {
    await f.range("keep", { ranges: ["10.4.0.0/31"], reuseCooldownSeconds: 3600 });
    assert.equal(await allocated("keep-a", { ipam: { name: "keep" }, size: 32 }), "10.4.0.0/32");
    await deleted("keep-a");
    const end = await coolingEnd("keep", "10.4.0.0/32");
    await controller?.stop();
    controller = undefined;
    // A new controller process: everything it knows comes from the API server.
    pool.start(cluster.kubeconfigPath, "pool-fields-restarted", { test: t });
    assert.equal(await allocated("keep-b", { ipam: { name: "keep" }, size: 32 }), "10.4.0.1/32");
    await f.request("keep-c", { ipam: { name: "keep" }, size: 32 });
    const busy = await f.settled("keep-c", stateIs("Busy"));
    assert.equal(
      busy.status?.message,
      `allocation with size 32 failed (space is cooling down until ${new Date(end).toISOString()})`,
    );
    const range = await f.rangeSettled("keep", (r) => r.status?.allocated === "1");
    assert.deepEqual(range.status?.cooling, [`10.4.0.0/32@${new Date(end).toISOString()}`]);
    await assertInvariants();
  });
});
