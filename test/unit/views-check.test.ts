import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../../src/api/types.ts";
import { allocationName } from "../../src/api/validation.ts";
import { type CheckInput, findProblems, renderFindings } from "../../src/cli/views/index.ts";

const NS = "ns";

function range(name: string, ranges: string[], namespace = NS): IPAMRange {
  return {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMRange",
    metadata: { name, namespace, uid: `uid-${name}` },
    spec: { ranges },
  };
}

function allocation(
  rangeName: string,
  cidr: string,
  request: string,
  o: { uid?: string; requestNamespace?: string; name?: string } = {},
): IPAMAllocation {
  return {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMAllocation",
    metadata: {
      name: o.name ?? allocationName(rangeName, cidr),
      namespace: NS,
      labels: { "ipam.mandelsoft.org/range": rangeName },
    },
    spec: {
      range: { name: rangeName, uid: `uid-${rangeName}` },
      cidr,
      request: { namespace: o.requestNamespace ?? NS, name: request, uid: o.uid ?? `uid-${request}` },
    },
  };
}

function request(name: string, rangeName: string, cidr?: string, namespace = NS): IPAMRequest {
  return {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMRequest",
    metadata: { name, namespace, uid: `uid-${name}` },
    spec: { ipam: { name: rangeName, ...(namespace !== NS ? { namespace: NS } : {}) } },
    status: cidr ? { state: "Ready", cidr } : { state: "Busy" },
  };
}

/** A consistent world: two ranges, three holders (one across namespaces), one waiting request. */
function clean(): { ranges: IPAMRange[]; allocations: IPAMAllocation[]; requests: IPAMRequest[] } {
  return {
    ranges: [range("v4", ["10.0.0.0/16"]), range("v6", ["fd00::/48"])],
    allocations: [
      allocation("v4", "10.0.0.0/24", "a"),
      allocation("v4", "10.0.1.0/24", "x", { requestNamespace: "team" }),
      allocation("v6", "fd00::/64", "b"),
    ],
    requests: [
      request("a", "v4", "10.0.0.0/24"),
      request("x", "v4", "10.0.1.0/24", "team"),
      request("b", "v6", "fd00::/64"),
      request("waiting", "v4"),
    ],
  };
}

function kinds(input: CheckInput): string[] {
  return findProblems(input).map((f) => `${f.kind} ${f.objectKind}/${f.namespace}/${f.name}`);
}

describe("views: check", () => {
  it("finds nothing in a consistent state", () => {
    assert.deepEqual(findProblems(clean()), []);
    assert.equal(renderFindings([]), "No problems found.\n");
  });

  it("finds overlapping allocations of one range", () => {
    const world = clean();
    world.allocations.push(allocation("v4", "10.0.0.128/25", "a2"));
    world.requests.push(request("a2", "v4", "10.0.0.128/25"));
    const findings = findProblems(world);
    assert.deepEqual(
      findings.map((f) => `${f.kind} ${f.objectKind}/${f.name} ${f.cidr}`),
      [
        `Overlap IPAMAllocation/${allocationName("v4", "10.0.0.128/25")} 10.0.0.128/25`,
        "Overlap IPAMRequest/a2 10.0.0.128/25",
      ],
    );
    assert.match(findings[0]?.message ?? "", /10\.0\.0\.128\/25 overlaps 10\.0\.0\.0\/24 .*request ns\/a/);
  });

  it("does not call blocks of different ranges overlapping", () => {
    const world = clean();
    world.ranges.push(range("twin", ["10.0.0.0/16"]));
    world.allocations.push(allocation("twin", "10.0.0.0/24", "t"));
    world.requests.push(request("t", "twin", "10.0.0.0/24"));
    assert.deepEqual(findProblems(world), []);
  });

  it("finds allocations whose request is gone or was re-created", () => {
    const world = clean();
    world.allocations.push(allocation("v4", "10.0.5.0/24", "gone"));
    world.allocations.push(allocation("v4", "10.0.6.0/24", "a", { uid: "uid-old-a" }));
    assert.deepEqual(kinds(world), [
      `OrphanAllocation IPAMAllocation/ns/${allocationName("v4", "10.0.5.0/24")}`,
      `OrphanAllocation IPAMAllocation/ns/${allocationName("v4", "10.0.6.0/24")}`,
    ]);
    const messages = findProblems(world).map((f) => f.message);
    assert.match(messages[0] ?? "", /request ns\/gone, which does not exist/);
    assert.match(messages[1] ?? "", /uid uid-old-a, but that request is another object now \(uid uid-a\)/);
  });

  it("takes a Cluster API claim's allocation as held (claims are not read), still checking its range", () => {
    const world = clean();
    const claimRecord = allocation("v4", "10.0.7.5/32", "node-1");
    claimRecord.spec.request.kind = "IPAddressClaim";
    world.allocations.push(claimRecord);
    assert.deepEqual(kinds(world), []);
    const overlapping = allocation("v4", "10.0.0.7/32", "node-2");
    overlapping.spec.request.kind = "IPAddressClaim";
    world.allocations.push(overlapping);
    assert.deepEqual(kinds(world), [`Overlap IPAMAllocation/ns/${allocationName("v4", "10.0.0.7/32")}`]);
  });

  it("finds allocations of a range that is gone or was re-created", () => {
    const world = clean();
    world.allocations.push(allocation("deleted", "10.9.0.0/24", "a"));
    const v4 = world.ranges[0];
    assert.ok(v4);
    v4.metadata.uid = "uid-v4-new";
    const findings = findProblems(world);
    assert.deepEqual(
      findings.map((f) => [f.kind, f.range]),
      [
        ["OrphanAllocation", "ns/deleted"],
        ["OrphanAllocation", "ns/v4"],
        ["OrphanAllocation", "ns/v4"],
      ],
    );
    assert.match(findings[1]?.message ?? "", /earlier IPAMRange ns\/v4/);
  });

  it("finds requests whose CIDR no allocation object guards", () => {
    const world = clean();
    world.requests.push(request("unguarded", "v4", "10.0.7.0/24"));
    // Guarded, but by another request's allocation object.
    world.requests.push(request("squatter", "v6", "fd00::/64"));
    const findings = findProblems(world);
    assert.deepEqual(
      findings.map((f) => `${f.kind} ${f.name}`),
      // By range, then kind: the v4 finding first; within v6 an overlap before a missing allocation.
      ["MissingAllocation unguarded", "Overlap squatter", "MissingAllocation squatter"],
    );
    assert.match(findings[0]?.message ?? "", /no IPAMAllocation of range ns\/v4 guards 10\.0\.7\.0\/24/);
    assert.match(findings[1]?.message ?? "", /fd00::\/64 overlaps fd00::\/64 held by request ns\/b/);
    assert.match(findings[2]?.message ?? "", /guarded by the allocation of request ns\/b/);
  });

  it("finds requests whose CIDR is outside their range", () => {
    const world = clean();
    world.allocations.push(allocation("v4", "10.1.0.0/24", "outside"));
    world.requests.push(request("outside", "v4", "10.1.0.0/24"));
    const findings = findProblems(world);
    assert.deepEqual(
      findings.map((f) => `${f.kind} ${f.objectKind}/${f.name}`),
      ["OutsideRange IPAMRequest/outside"],
    );
    assert.match(
      findings[0]?.message ?? "",
      /10\.1\.0\.0\/24 is outside the ranges of IPAMRange ns\/v4 \(10\.0\.0\.0\/16\)/,
    );
  });

  it("finds requests holding a CIDR of a range that does not exist, and junk CIDRs", () => {
    const world = clean();
    world.requests.push(request("lost", "nowhere", "10.0.0.0/24"));
    world.requests.push(request("junk", "v4", "not-a-cidr"));
    world.allocations.push(allocation("v4", "bogus", "a", { name: "v4.bogus" }));
    assert.deepEqual(kinds(world), [
      "MissingRange IPAMRequest/ns/lost",
      "InvalidCidr IPAMAllocation/ns/v4.bogus",
      "InvalidCidr IPAMRequest/ns/junk",
    ]);
  });

  it("renders a table with a count", () => {
    const world = clean();
    world.allocations.push(allocation("v4", "10.0.5.0/24", "gone"));
    const text = renderFindings(findProblems(world));
    assert.match(text, /^PROBLEM +OBJECT +RANGE +CIDR +MESSAGE$/m);
    assert.match(
      text,
      /^OrphanAllocation +IPAMAllocation\/ns\/v4\.10-0-5-0-24 +ns\/v4 +10\.0\.5\.0\/24 +held for request/m,
    );
    assert.match(text, /^1 problem found\.$/m);
  });
});
