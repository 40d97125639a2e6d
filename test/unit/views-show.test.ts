import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../../src/api/types.ts";
import { allocationName } from "../../src/api/validation.ts";
import { renderShow, showData, showRange } from "../../src/cli/views/index.ts";

const NS = "ns";

function range(name: string, ranges: string[]): IPAMRange {
  return {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMRange",
    metadata: { name, namespace: NS, uid: `uid-${name}` },
    spec: { ranges, chunkSize: 24 },
    status: { state: "Ready", message: "" },
  };
}

function allocation(
  rangeName: string,
  cidr: string,
  request: string,
  uid = `uid-${request}`,
): IPAMAllocation {
  return {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMAllocation",
    metadata: {
      name: allocationName(rangeName, cidr),
      namespace: NS,
      labels: { "ipam.mandelsoft.org/range": rangeName },
    },
    spec: {
      range: { name: rangeName, uid: `uid-${rangeName}` },
      cidr,
      request: { namespace: NS, name: request, uid },
    },
  };
}

function request(name: string, rangeName: string, status: IPAMRequest["status"]): IPAMRequest {
  return {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMRequest",
    metadata: { name, namespace: NS, uid: `uid-${name}` },
    spec: { ipam: { name: rangeName } },
    status,
  };
}

describe("views: show", () => {
  const pool = range("pool", ["10.0.0.0/22"]);
  const allocations = [
    allocation("pool", "10.0.1.0/24", "a"),
    allocation("pool", "10.0.2.0/24", "gone"),
    allocation("pool", "10.0.3.0/25", "b", "uid-old-b"),
    allocation("pool", "10.0.8.0/24", "c"), // outside: the range shrank
  ];
  const requests = [
    request("a", "pool", { state: "Ready", cidr: "10.0.1.0/24" }),
    request("b", "pool", { state: "Busy", message: "allocation with size 24 failed" }),
    request("c", "pool", { state: "Ready", cidr: "10.0.8.0/24" }),
    request("elsewhere", "other", { state: "Busy", message: "allocation with size 24 failed" }),
  ];
  const view = showRange(pool, allocations, requests);

  it("says which request holds which block, and whether it is still there", () => {
    assert.deepEqual(
      view.blocks.map((b) => [
        b.cidr,
        `${b.request.namespace}/${b.request.name}`,
        b.holder,
        b.requestState,
        b.pendingRemoval,
      ]),
      [
        ["10.0.1.0/24", "ns/a", "Live", "Ready", false],
        ["10.0.2.0/24", "ns/gone", "Missing", undefined, false],
        ["10.0.3.0/25", "ns/b", "Replaced", undefined, false],
        ["10.0.8.0/24", "ns/c", "Live", "Ready", true],
      ],
    );
  });

  it("lists the maximal free blocks and the pending removals", () => {
    assert.deepEqual(view.freeBlocks, ["10.0.0.0/24", "10.0.3.128/25"]);
    assert.deepEqual(view.pendingRemovals, ["10.0.8.0/24"]);
    assert.equal(view.size, 1024n);
    assert.equal(view.allocated, 1024n - 384n);
    assert.equal(view.free, 384n);
  });

  it("lists the requests of this range that wait for space", () => {
    assert.deepEqual(
      view.waiting.map((w) => [w.name, w.state]),
      [["b", "Busy"]],
    );
  });

  it("renders a readable summary", () => {
    const text = renderShow(view);
    assert.match(text, /^Name: +pool$/m);
    assert.match(text, /^Usage: +640\/1024 allocated, 384 free \(62\.5%\) \[#{12}\.{8}\]$/m);
    assert.match(text, /^ {2}10\.0\.1\.0\/24 +ns\/a +Ready\s*$/m);
    assert.match(text, /^ {2}10\.0\.2\.0\/24 +ns\/gone \(request missing\) +-$/m);
    assert.match(text, /^ {2}10\.0\.8\.0\/24 +ns\/c +Ready +pending removal$/m);
    assert.match(text, /Free blocks \(2\):\n {2}10\.0\.0\.0\/24\n {2}10\.0\.3\.128\/25\n/);
    assert.match(text, /Pending removals:\n {2}10\.0\.8\.0\/24\n/);
    assert.match(
      text,
      /Waiting requests:\n {2}REQUEST +STATE +MESSAGE\n {2}ns\/b +Busy +allocation with size 24 failed\n/,
    );
  });

  it("limits the listed free blocks unless asked for all", () => {
    const big = showRange(range("big", ["10.0.0.0/16"]), [allocation("big", "10.0.0.0/32", "x")], []);
    assert.equal(big.freeBlocks.length, 16);
    const text = renderShow(big, { maxFreeBlocks: 3 });
    assert.match(text, /\.\.\. 13 more/);
    assert.doesNotMatch(renderShow(big, { maxFreeBlocks: 0 }), /more/);
  });

  it("gives exact strings in data output", () => {
    const data = showData(showRange(range("v6", ["fd00::/48"]), [allocation("v6", "fd00::/64", "x")], []));
    assert.equal(data.size, "1208925819614629174706176");
    assert.equal(data.allocated, "18446744073709551616");
  });

  it("shows a range whose spec is invalid without free space", () => {
    const bad = showRange(
      range("bad", ["10.0.0.0/8", "fd00::/8"]),
      [allocation("bad", "10.0.0.0/24", "x")],
      [],
    );
    assert.equal(bad.state, "Invalid");
    assert.deepEqual(bad.freeBlocks, []);
    assert.deepEqual(
      bad.blocks.map((b) => b.cidr),
      ["10.0.0.0/24"],
    );
    assert.match(renderShow(bad), /^State: +Invalid \(invalid ip ranges/m);
  });

  it("shows exclusions, the gateway, cooling blocks, and a holder over a later exclusion as pending removal", () => {
    const spec = {
      ranges: ["10.0.0.0/29"],
      exclude: ["10.0.0.4-10.0.0.5"],
      gateway: "10.0.0.1",
      reuseCooldownSeconds: 60,
    };
    const v = showRange(
      {
        ...range("pf", []),
        spec,
        status: { state: "Ready", cooling: ["10.0.0.2/32@2026-12-01T07:00:30.000Z", "junk"] },
      },
      [allocation("pf", "10.0.0.4/32", "x")],
      [request("x", "pf", { state: "Ready", cidr: "10.0.0.4/32" })],
    );
    assert.deepEqual([v.size, v.allocated, v.free, v.excluded, v.coolingAddresses], [8n, 1n, 4n, 2n, 1n]);
    assert.deepEqual(v.pendingRemovals, ["10.0.0.4/32"]);
    assert.deepEqual(v.cooling, ["10.0.0.2/32 until 2026-12-01T07:00:30.000Z"]);
    const text = renderShow(v);
    assert.match(text, /^Usage: +1\/8 allocated, 4 free .*; 2 excluded, 1 cooling down$/m);
    assert.match(text, /^Exclude: +10\.0\.0\.4-10\.0\.0\.5$/m);
    assert.match(text, /^Gateway: +10\.0\.0\.1$/m);
    assert.match(text, /^Cooldown: +60s after each release$/m);
    assert.match(text, /^Cooling down \(1\):\n {2}10\.0\.0\.2\/32 until 2026-12-01T07:00:30\.000Z$/m);
    assert.match(text, /^ {2}10\.0\.0\.4\/32 +ns\/x +Ready +pending removal/m);
    const data = showData(v);
    assert.deepEqual([data.excluded, data.cooling, data.gateway], ["2", "1", "10.0.0.1"]);
  });
});
