// The UI's reads without a cluster: range summaries and maps (exclusions, gateway, cooling, pending
// removals, claims, waiting requests), block parameters, cluster ranges, and change batches.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMAllocation, IPAMRequest } from "../../src/api/types.ts";
import { ClusterState } from "../../src/cli/ui/cluster-state.ts";
import type { RangeObject } from "../../src/cli/ui/objects.ts";
import type { RangeView } from "../../src/cli/ui/view-data.ts";
import { type FixtureRange, fixtureState, recordObject } from "../../src/testing/ui-fixture.ts";

const nodes: FixtureRange = {
  namespace: "infra",
  name: "nodes",
  ranges: ["10.40.0.0-10.40.3.127"],
  exclude: ["10.40.0.0-10.40.0.15"],
  gateway: "10.40.0.1",
  cooling: ["10.40.1.64/26@2099-01-01T00:00:00.000Z"],
};

function nodesState(): ClusterState {
  return fixtureState([
    {
      range: nodes,
      blocks: [
        { cidr: "10.40.0.64/26", holder: "rack-a" },
        { cidr: "10.40.1.48/30", holder: "vip-1", claim: true },
        { cidr: "10.40.3.0/24", holder: "legacy" },
      ],
    },
  ]);
}

function viewOf(state: ClusterState, key: string, block?: string): RangeView {
  const result = state.view(key, block);
  assert.ok(result.ok, result.ok ? "" : result.message);
  return result.view;
}

function item(view: RangeView, cidr: string) {
  const found = view.items.find((i) => i[6] === cidr);
  assert.ok(found, `${cidr} on the map`);
  return { kind: view.kinds[found[4]], holder: view.holders[found[5]], detail: found[7] };
}

describe("UI view data", () => {
  it("summarises a range with exact counts per state", () => {
    const [summary] = nodesState().summaries();
    assert.ok(summary);
    assert.equal(summary.key, "infra/nodes");
    assert.equal(summary.size, "896");
    assert.equal(summary.allocated, String(64 + 4 + 128));
    assert.equal(summary.pending, "128");
    assert.equal(summary.excluded, "16");
    assert.equal(summary.cooling, "64");
    assert.equal(summary.free, String(896 - 196 - 16 - 64));
    assert.equal(summary.gateway, "10.40.0.1");
    assert.equal(summary.largestFree, "/24");
    assert.equal(summary.usedPpm, Math.floor((196 * 1_000_000) / 896));
  });

  it("draws gateway, exclusions, cooling, pending removals and holders apart", () => {
    const view = viewOf(nodesState(), "infra/nodes");
    assert.deepEqual(view.grid, { width: 32, height: 32, cellSize: "1", usedCells: 896, total: "896" });
    assert.equal(item(view, "10.40.0.1/32").kind, "gateway");
    assert.equal(item(view, "10.40.0.0/32").kind, "excluded");
    assert.equal(item(view, "10.40.0.8/29").kind, "excluded");
    assert.deepEqual(item(view, "10.40.1.64/26"), {
      kind: "cooling",
      holder: undefined,
      detail: "2099-01-01T00:00:00.000Z",
    });
    const legacy = item(view, "10.40.3.0/25");
    assert.equal(legacy.kind, "pending");
    assert.equal(legacy.detail, "10.40.3.0/24", "the held block reaches outside the pool");
    assert.equal(legacy.holder?.state, "pending removal");
    const claim = item(view, "10.40.1.48/30");
    assert.equal(claim.holder?.kind, "IPAddressClaim");
    assert.equal(claim.holder?.name, "vip-1");
    assert.equal(item(view, "10.40.0.64/26").holder?.status, "Ready");
  });

  it("zooms into a block and names the way back", () => {
    const state = nodesState();
    const view = viewOf(state, "infra/nodes", "10.40.1.0/24");
    assert.equal(view.view, "10.40.1.0/24");
    assert.equal(view.grid.total, "256");
    assert.equal(view.parent, "", "4 bits up, 10.40.0.0/20, holds the whole pool: zoom out to it");
    const bad = state.view("infra/nodes", "fd00::/64");
    assert.deepEqual(bad, {
      ok: false,
      status: 400,
      message: 'invalid block "fd00::/64": use a CIDR of the range\'s family (IPv4)',
    });
    const outside = state.view("infra/nodes", "10.41.0.0/24");
    assert.equal(outside.ok ? 0 : outside.status, 400);
    const missing = state.view("infra/none", undefined);
    assert.equal(missing.ok ? 0 : missing.status, 404);
  });

  it("shows an invalid range with its message and an empty map", () => {
    const state = new ClusterState();
    state.putRange({
      kind: "IPAMRange",
      metadata: { namespace: "infra", name: "broken" },
      spec: { ranges: ["10.0.0.0/8", "fd00::/64"] },
      status: { state: "Invalid" },
    });
    const view = viewOf(state, "infra/broken");
    assert.equal(view.range.state, "Invalid");
    assert.match(view.range.message, /fd00::\/64/);
    assert.deepEqual(view.items, []);
    assert.equal(view.grid.usedCells, 0);
  });

  it("lists waiting requests after the holders", () => {
    const state = nodesState();
    const waiting: IPAMRequest = {
      apiVersion: "ipam.mandelsoft.org/v1alpha1",
      kind: "IPAMRequest",
      metadata: { namespace: "infra", name: "late" },
      spec: { ipam: { name: "nodes" }, size: 20 },
      status: { state: "Invalid", message: "size 20 never fits" },
    };
    state.putRequest(waiting);
    const holders = viewOf(state, "infra/nodes").holders;
    assert.deepEqual(holders.at(-1), {
      kind: "IPAMRequest",
      namespace: "infra",
      name: "late",
      cidr: "",
      state: "waiting",
      status: "Invalid",
      message: "size 20 never fits",
    });
    assert.equal(holders.filter((h) => h.name === "rack-a").length, 1, "a holding request is listed once");
  });

  it("shows a ClusterIPAMRange with its records from the controller's namespace", () => {
    const state = new ClusterState();
    const shared: RangeObject = {
      kind: "ClusterIPAMRange",
      metadata: { name: "shared" },
      spec: { ranges: ["fd00:30::/48"] },
      status: { state: "Ready" },
    };
    state.putRange(shared);
    const record: IPAMAllocation = recordObject(
      { namespace: "kube-system", name: "shared", ranges: [] },
      { cidr: "fd00:30::/64", holder: "team-a" },
    );
    record.spec.range = {
      name: "shared",
      uid: "u",
      kind: "ClusterIPAMRange",
    } as IPAMAllocation["spec"]["range"];
    record.spec.request.namespace = "team-a";
    state.putRecord(record);
    const host = recordObject(
      { namespace: "kube-system", name: "shared", ranges: [] },
      { cidr: "fd00:30:0:1::5/128", holder: "host" },
    );
    host.spec.range = record.spec.range;
    state.putRecord(host);
    const view = viewOf(state, "shared");
    assert.equal(view.range.kind, "ClusterIPAMRange");
    const holders = new Map(view.holders.map((h) => [h.name, h]));
    assert.equal(holders.get("team-a")?.zoom, undefined, "a /64 is one cell of the /48's map");
    assert.equal(holders.get("host")?.zoom, "fd00:30:0:1::/112", "a /128 is drawn alone 16 bits up");
    assert.equal(view.range.family, "IPv6");
    assert.equal(item(view, "fd00:30::/64").holder?.namespace, "team-a");
    assert.equal(state.summaries()[0]?.key, "shared");
  });

  it("tells subscribers which ranges changed, a batch at a time", async () => {
    const state = nodesState();
    const batch = new Promise<string[]>((resolve) => state.subscribe(resolve));
    state.putRecord(recordObject(nodes, { cidr: "10.40.2.0/26", holder: "rack-d" }));
    state.putRecord(recordObject(nodes, { cidr: "10.40.2.64/26", holder: "rack-e" }));
    assert.deepEqual(await batch, ["infra/nodes"]);
    assert.equal(item(viewOf(state, "infra/nodes"), "10.40.2.64/26").holder?.name, "rack-e");
    state.close();
  });
});
