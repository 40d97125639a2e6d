import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../../src/api/types.ts";
import { allocationName } from "../../src/api/validation.ts";
import {
  type CheckInput,
  findingsData,
  findProblems,
  problemCount,
  renderFindings,
} from "../../src/cli/views/index.ts";

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

describe("views: check, pool fields (warnings)", () => {
  /** The clean world with v4 given a gateway and an exclusion over blocks it holds, and `cooling`. */
  function excluding(cooling?: unknown[]) {
    const world = clean();
    world.ranges[0] = {
      ...range("v4", ["10.0.0.0/16"]),
      spec: { ranges: ["10.0.0.0/16"], gateway: "10.0.0.1", exclude: ["10.0.1.128/28"] },
      ...(cooling ? { status: { state: "Ready", cooling: cooling as string[] } } : {}),
    };
    return world;
  }

  it("reports a block held over an exclusion or the gateway as a pending removal, naming its holder", () => {
    const world = excluding();
    const findings = findProblems(world);
    assert.deepEqual(
      findings.map(
        (f) => `${f.severity} ${f.kind} ${f.objectKind}/${f.namespace}/${f.name} ${f.range} ${f.cidr}`,
      ),
      [
        `warning HeldOverExclusion IPAMAllocation/ns/${allocationName("v4", "10.0.0.0/24")} ns/v4 10.0.0.0/24`,
        `warning HeldOverExclusion IPAMAllocation/ns/${allocationName("v4", "10.0.1.0/24")} ns/v4 10.0.1.0/24`,
      ],
    );
    assert.equal(
      findings[0]?.message,
      "10.0.0.0/24 overlaps excluded gateway 10.0.0.1: a pending removal, kept until IPAMRequest ns/a releases it",
    );
    assert.equal(
      findings[1]?.message,
      "10.0.1.0/24 overlaps excluded 10.0.1.128/28: a pending removal, kept until IPAMRequest team/x releases it",
    );
    assert.equal(problemCount(findings), 0);
  });

  it("leaves blocks beside an exclusion, other ranges' blocks and records of an earlier range alone", () => {
    const world = excluding();
    world.allocations = world.allocations.filter((a) => a.spec.cidr === "fd00::/64");
    world.requests = world.requests.filter((r) => r.metadata.name === "b" || !r.status?.cidr);
    world.allocations.push(allocation("v4", "10.0.1.144/28", "c"), allocation("v4", "10.0.0.0/31", "old"));
    world.requests.push(request("c", "v4", "10.0.1.144/28"), request("old", "v4", "10.0.0.0/31"));
    const stale = world.allocations.at(-1);
    assert.ok(stale);
    stale.spec.range.uid = "uid-v4-before";
    assert.deepEqual(kinds(world), [
      `OrphanAllocation IPAMAllocation/ns/${allocationName("v4", "10.0.0.0/31")}`,
    ]);
  });

  it("reports each status.cooling entry the controller cannot read, on the range", () => {
    const world = excluding([
      "10.0.3.0/24@2026-12-01T07:00:00Z",
      "10.0.4.0/24",
      "fd00::/64@2026-12-01T07:00:00Z",
    ]);
    world.allocations = world.allocations.filter((a) => a.spec.cidr === "fd00::/64");
    world.requests = world.requests.filter((r) => r.metadata.name === "b" || !r.status?.cidr);
    const findings = findProblems(world);
    assert.deepEqual(
      findings.map((f) => `${f.severity} ${f.kind} ${f.objectKind}/${f.namespace}/${f.name} ${f.range}`),
      ["warning InvalidCooling IPAMRange/ns/v4 ns/v4", "warning InvalidCooling IPAMRange/ns/v4 ns/v4"],
    );
    assert.deepEqual(
      findings.map((f) => f.message),
      [
        'status.cooling: invalid cooling entry "10.0.4.0/24": use <cidr>@<ISO time>; the controller ignores it (that block does not cool down)',
        'status.cooling: invalid cooling entry "fd00::/64@2026-12-01T07:00:00Z": IPv6 but the range is IPv4; the controller ignores it (that block does not cool down)',
      ],
    );
  });

  it("counts warnings apart from problems in the table and the data", () => {
    const world = excluding(["junk"]);
    world.allocations.push(allocation("v4", "10.0.5.0/24", "gone"));
    const findings = findProblems(world);
    const text = renderFindings(findings);
    assert.match(text, /^OrphanAllocation +IPAMAllocation\/ns\/v4\.10-0-5-0-24 /m);
    assert.match(text, /^HeldOverExclusion \(warning\) +IPAMAllocation\/ns\/v4\.10-0-0-0-24 /m);
    assert.match(text, /^InvalidCooling \(warning\) +IPAMRange\/ns\/v4 +ns\/v4 +status\.cooling: /m);
    assert.match(text, /^1 problem found, 3 warnings\.$/m);
    const data = findingsData(findings);
    assert.deepEqual([data.problems, data.warnings, data.findings.length], [1, 3, 4]);
    const warningsOnly = findings.filter((f) => f.severity === "warning").slice(0, 1);
    assert.match(renderFindings(warningsOnly), /^No problems found, 1 warning\.$/m);
  });
});
