// The pure parts of kubipam/client: option checks, the request a call creates, spec comparison, what a
// status means to a waiting caller, range usage, the error type, owner references, and kubipam/api.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { crdManifests } from "../../src/api/crds.ts";
import * as api from "../../src/api/index.ts";
import type { IPAMRange, IPAMRequest } from "../../src/api/types.ts";
import { AddressRequestError, describeStatus, isAddressRequestError } from "../../src/client/errors.ts";
import { ownerReferenceTo } from "../../src/client/owner.ts";
import {
  type AddressSpec,
  checkAddressSpec,
  desiredRequest,
  type RangeRef,
  rangeUsage,
  requestOutcome,
  specDifferences,
  timeoutOf,
} from "../../src/client/spec.ts";

const base = { namespace: "net", name: "c1", range: { name: "pods" } as RangeRef };

function request(status: IPAMRequest["status"], extra: Partial<IPAMRequest["metadata"]> = {}): IPAMRequest {
  return {
    apiVersion: api.API_VERSION,
    kind: "IPAMRequest",
    metadata: { name: "c1", namespace: "net", ...extra },
    spec: { ipam: { name: "pods" } },
    status,
  };
}

const readyCondition = (reason: string) => ({
  type: "Ready",
  status: "False" as const,
  reason,
  message: "",
  lastTransitionTime: "2026-01-01T00:00:00Z",
});

describe("checkAddressSpec", () => {
  it("accepts the common cases", () => {
    checkAddressSpec(base);
    checkAddressSpec({ ...base, size: 0 });
    checkAddressSpec({ ...base, size: 128, range: { name: "pods", namespace: "other" } });
    checkAddressSpec({ ...base, request: "10.0.0.0/24" });
    checkAddressSpec({ ...base, range: { name: "global", kind: "ClusterIPAMRange" } });
  });

  it("names what is wrong", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ namespace: "" }, /^namespace must be a non-empty string$/],
      [{ name: "x".repeat(254) }, /^name is longer than 253 characters$/],
      [{ range: { name: "" } }, /^range\.name must be a non-empty string$/],
      [{ size: 24, request: "/24" }, /^give size or request, not both$/],
      [{ size: 129 }, /^size must be an integer prefix length from 0 to 128, not 129$/],
      [{ size: 2.5 }, /not 2\.5$/],
      [{ request: " " }, /^request must be a non-empty string/],
      [
        { range: { name: "g", namespace: "x", kind: "ClusterIPAMRange" } },
        /must be empty for a ClusterIPAMRange/,
      ],
    ];
    for (const [change, message] of bad) {
      assert.throws(() => checkAddressSpec({ ...base, ...change } as unknown as AddressSpec), {
        name: "TypeError",
        message,
      });
    }
    const wrongKind = { ...base, range: { name: "p", kind: "Pool" } } as unknown as AddressSpec;
    assert.throws(
      () => checkAddressSpec(wrongKind),
      /range\.kind must be IPAMRange or ClusterIPAMRange, not "Pool"/,
    );
  });

  it("checks timeouts", () => {
    assert.equal(timeoutOf(undefined, 60_000), 60_000);
    assert.equal(timeoutOf(5, 60_000), 5);
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => timeoutOf(bad, 1), /timeoutMs must be a positive number of milliseconds/);
    }
  });
});

describe("desiredRequest", () => {
  it("writes only what the caller gave", () => {
    assert.deepEqual(desiredRequest({ ...base, size: 28 }), {
      apiVersion: "ipam.mandelsoft.org/v1alpha1",
      kind: "IPAMRequest",
      metadata: { name: "c1", namespace: "net" },
      spec: { ipam: { name: "pods" }, size: 28 },
    });
  });

  it("carries labels, owner reference, range namespace and kind", () => {
    const owner = { apiVersion: "example.com/v1", kind: "Tenant", name: "t", uid: "u-1", controller: true };
    const r = desiredRequest({
      ...base,
      request: "/26",
      labels: { app: "x" },
      ownerReference: owner,
      range: { name: "pods", namespace: "infra" },
    });
    assert.deepEqual(r.metadata, {
      name: "c1",
      namespace: "net",
      labels: { app: "x" },
      ownerReferences: [owner],
    });
    assert.deepEqual(r.spec, { ipam: { name: "pods", namespace: "infra" }, request: "/26" });
    const cluster = desiredRequest({ ...base, range: { name: "global", kind: "ClusterIPAMRange" } });
    assert.deepEqual(cluster.spec, { ipam: { name: "global", kind: "ClusterIPAMRange" } });
  });
});

describe("specDifferences", () => {
  const wanted = desiredRequest({ ...base, size: 28 }).spec;

  it("treats an unset range namespace as the request's and an unset kind as IPAMRange", () => {
    assert.deepEqual(
      specDifferences({ ipam: { name: "pods", namespace: "net" }, size: 28 }, wanted, "net"),
      [],
    );
    assert.deepEqual(
      specDifferences({ ipam: { name: "pods", kind: "IPAMRange" }, size: 28 }, wanted, "net"),
      [],
    );
    assert.deepEqual(
      specDifferences({ ipam: { name: "pods" }, size: 28, description: "kept" }, wanted, "net"),
      [],
      "the description is not part of the comparison",
    );
  });

  it("names each differing field", () => {
    assert.deepEqual(
      specDifferences({ ipam: { name: "other", namespace: "infra" }, request: "/28" }, wanted, "net"),
      [
        'spec.ipam.namespace is "infra", this call wants "net"',
        'spec.ipam.name is "other", this call wants "pods"',
        "spec.size is unset, this call wants 28",
        'spec.request is "/28", this call wants unset',
      ],
    );
    const cluster = desiredRequest({
      ...base,
      size: 28,
      range: { name: "pods", kind: "ClusterIPAMRange" },
    }).spec;
    assert.deepEqual(specDifferences({ ipam: { name: "pods" }, size: 28 }, cluster, "net"), [
      'spec.ipam.kind is "IPAMRange", this call wants "ClusterIPAMRange"',
      'spec.ipam.namespace is "net", this call wants unset',
    ]);
  });
});

describe("requestOutcome", () => {
  it("maps status to ready, invalid, deleted or pending", () => {
    assert.deepEqual(requestOutcome(request({ state: "Ready", cidr: "10.0.0.0/28" })), {
      kind: "ready",
      cidr: "10.0.0.0/28",
    });
    assert.deepEqual(requestOutcome(request({ state: "Ready" })), { kind: "pending" }, "Ready needs a cidr");
    assert.deepEqual(requestOutcome(request({ state: "Invalid", message: "x" })), { kind: "invalid" });
    assert.deepEqual(requestOutcome(request({ state: "Busy" })), { kind: "pending" });
    assert.deepEqual(requestOutcome(request(undefined)), { kind: "pending" });
    assert.deepEqual(requestOutcome(undefined), { kind: "deleted" });
    const deleting = request(
      { state: "Ready", cidr: "10.0.0.0/28" },
      { deletionTimestamp: "2026-01-01T00:00:00Z" },
    );
    assert.deepEqual(requestOutcome(deleting), { kind: "deleted" });
  });
});

describe("rangeUsage", () => {
  const range = (status: IPAMRange["status"]): IPAMRange => ({
    apiVersion: api.API_VERSION,
    kind: "IPAMRange",
    metadata: { name: "r" },
    spec: { ranges: ["fd00::/64"] },
    status,
  });

  it("reads exact decimals as bigint", () => {
    assert.deepEqual(
      rangeUsage(range({ size: "18446744073709551616", allocated: "256", free: "18446744073709551360" })),
      {
        size: 2n ** 64n,
        allocated: 256n,
        free: 2n ** 64n - 256n,
      },
    );
    assert.equal(rangeUsage(range(undefined)), undefined);
    assert.equal(rangeUsage(range({ state: "Ready", size: "1" })), undefined);
  });

  it("refuses a status that is not a decimal", () => {
    assert.throws(
      () => rangeUsage(range({ size: "1e3", allocated: "0", free: "0" })),
      /range status\.size is not a decimal number: "1e3"/,
    );
  });
});

describe("AddressRequestError", () => {
  it("carries state, reason and message as the controller wrote them", () => {
    const last = request({
      state: "Busy",
      message: "allocation with size 28 failed",
      conditions: [readyCondition("NoSpace")],
    });
    const err = new AddressRequestError({
      code: "Timeout",
      namespace: "net",
      name: "c1",
      message: "m",
      request: last,
    });
    assert.equal(err.state, "Busy");
    assert.equal(err.reason, "NoSpace");
    assert.equal(err.statusMessage, "allocation with size 28 failed");
    assert.equal(err.requestName, "c1");
    assert.ok(isAddressRequestError(err, "Timeout"));
    assert.equal(isAddressRequestError(err, "Invalid"), false);
    assert.equal(isAddressRequestError(new Error("x")), false);
    assert.equal(describeStatus(last), "Busy (NoSpace): allocation with size 28 failed");
  });

  it("describes missing and reason-equal states briefly", () => {
    assert.equal(describeStatus(undefined), "not found");
    assert.match(describeStatus(request(undefined)), /no status yet \(is the kubipam controller running\?\)/);
    const invalid = request({
      state: "Invalid",
      message: "invalid size 40",
      conditions: [readyCondition("Invalid")],
    });
    assert.equal(describeStatus(invalid), "Invalid: invalid size 40");
    const unknownReason = request({ state: "Busy", conditions: [readyCondition("SomethingNew")] });
    assert.equal(
      new AddressRequestError({
        code: "Timeout",
        namespace: "n",
        name: "c",
        message: "",
        request: unknownReason,
      }).reason,
      "SomethingNew",
    );
  });
});

describe("ownerReferenceTo", () => {
  it("points at a stored object as its controller", () => {
    const owner = { apiVersion: "example.com/v1", kind: "Tenant", metadata: { name: "t", uid: "u-1" } };
    assert.deepEqual(ownerReferenceTo(owner), {
      apiVersion: "example.com/v1",
      kind: "Tenant",
      name: "t",
      uid: "u-1",
      controller: true,
      blockOwnerDeletion: true,
    });
    assert.throws(
      () => ownerReferenceTo({ kind: "Tenant", metadata: { name: "t" } }),
      /needs apiVersion, kind/,
    );
  });
});

describe("kubipam/api", () => {
  it("exports the CRDs made by src/api/crds.ts and the constants the controller writes", () => {
    assert.deepEqual(api.crdManifests(), crdManifests());
    const names = api.crdManifests().map((c) => (c.metadata as { name: string }).name);
    assert.deepEqual(names, [
      "ipamranges.ipam.mandelsoft.org",
      "ipamrequests.ipam.mandelsoft.org",
      "ipamallocations.ipam.mandelsoft.org",
    ]);
    assert.equal(api.FINALIZER, "mandelsoft.org/ipam");
    assert.deepEqual(Object.values(api.RequestReadyReason), [
      "Allocated",
      "NoSpace",
      "Invalid",
      "Forbidden",
      "Rejected",
    ]);
    assert.deepEqual(Object.values(api.RangeReadyReason), ["Valid", "InvalidSpec", "Deleting"]);
    assert.deepEqual(Object.values(api.RequestInRangeReason), ["InsideRange", "RangeShrunk", "Excluded"]);
  });
});

describe("package entry points", () => {
  it("maps kubipam/api, kubipam/client and kubipam/ipam to dist/ for users and to src/ for the examples", () => {
    const read = (file: string) =>
      JSON.parse(readFileSync(new URL(`../../${file}`, import.meta.url), "utf8"));
    const exports: Record<string, { types: string; default: string }> = read("package.json").exports;
    const paths: Record<string, string[]> = read("tsconfig.json").compilerOptions.paths;
    for (const sub of ["api", "client", "ipam"]) {
      assert.deepEqual(exports[`./${sub}`], {
        types: `./dist/${sub}/index.d.ts`,
        default: `./dist/${sub}/index.js`,
      });
      assert.deepEqual(paths[`kubipam/${sub}`], [`./src/${sub}/index.ts`]);
      assert.ok(existsSync(new URL(`../../src/${sub}/index.ts`, import.meta.url)), `src/${sub}/index.ts`);
    }
  });
});
