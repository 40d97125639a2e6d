// ClusterIPAMRange without a cluster: label selector matching, pool references and their keys, record
// names that never collide with an IPAMRange's, spec.ipam.kind, the cluster range's CRD, the views
// and the metrics' kind label.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { crdManifests } from "../../src/api/crds.ts";
import { selectorMatches, selectorProblem } from "../../src/api/label-selector.ts";
import {
  clusterPool,
  describePool,
  parsePoolKey,
  poolKey,
  poolOfRecord,
  rangePool,
  recordNamespace,
} from "../../src/api/pool-ref.ts";
import type { ClusterIPAMRange, IPAMAllocation, IPAMRequest } from "../../src/api/types.ts";
import { allocationName, rangeRefOf, recordName, validateRangeObject } from "../../src/api/validation.ts";
import { findProblems, renderUsage, showRange, usageRows } from "../../src/cli/views/index.ts";
import { PrometheusIpamMetrics } from "../../src/controllers/metrics.ts";
import type { IpamWriter } from "../../src/controllers/ports.ts";
import { Registry } from "../../src/runtime/metrics.ts";
import { fakeController } from "../harness/fake-ports.ts";

const labels = { team: "blue", tier: "web", "kubernetes.io/metadata.name": "shop" };

describe("label selectors (metav1.LabelSelector)", () => {
  it("absent or empty selects every namespace", () => {
    assert.equal(selectorMatches(undefined, labels), true);
    assert.equal(selectorMatches({}, undefined), true);
  });

  it("matchLabels: every pair must be there", () => {
    assert.equal(selectorMatches({ matchLabels: { team: "blue" } }, labels), true);
    assert.equal(selectorMatches({ matchLabels: { team: "blue", tier: "db" } }, labels), false);
    assert.equal(selectorMatches({ matchLabels: { team: "blue" } }, {}), false);
  });

  it("matchExpressions: In, NotIn, Exists, DoesNotExist, all of them and matchLabels together", () => {
    const expr = (operator: string, values?: string[], key = "team") => ({
      matchExpressions: [{ key, operator, ...(values ? { values } : {}) }],
    });
    assert.equal(selectorMatches(expr("In", ["red", "blue"]), labels), true);
    assert.equal(selectorMatches(expr("In", ["red"]), labels), false);
    assert.equal(selectorMatches(expr("In", ["blue"], "absent"), labels), false);
    assert.equal(selectorMatches(expr("NotIn", ["red"]), labels), true);
    assert.equal(selectorMatches(expr("NotIn", ["blue"]), labels), false);
    assert.equal(selectorMatches(expr("NotIn", ["blue"], "absent"), labels), true);
    assert.equal(selectorMatches(expr("Exists"), labels), true);
    assert.equal(selectorMatches(expr("Exists", undefined, "absent"), labels), false);
    assert.equal(selectorMatches(expr("DoesNotExist", undefined, "absent"), labels), true);
    assert.equal(selectorMatches(expr("DoesNotExist"), labels), false);
    const both = {
      matchLabels: { tier: "web" },
      matchExpressions: [
        { key: "team", operator: "In", values: ["blue"] },
        { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system"] },
      ],
    };
    assert.equal(selectorMatches(both, labels), true);
    assert.equal(selectorMatches({ ...both, matchLabels: { tier: "db" } }, labels), false);
  });

  it("a malformed selector selects nothing and says what is wrong", () => {
    const bad = { matchExpressions: [{ key: "team", operator: "Equals", values: ["blue"] }] };
    assert.equal(selectorMatches(bad, labels), false);
    assert.equal(
      selectorProblem(bad),
      'matchExpressions[0]: invalid operator "Equals": use In, NotIn, Exists or DoesNotExist',
    );
    assert.match(
      selectorProblem({ matchExpressions: [{ key: "a", operator: "In" }] }) ?? "",
      /at least one value/,
    );
    assert.match(
      selectorProblem({ matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] }) ?? "",
      /takes no values/,
    );
    assert.equal(selectorProblem({ matchLabels: { a: "b" } }), undefined);
  });

  it("makes a cluster range with a malformed selector Invalid", () => {
    const range: ClusterIPAMRange = {
      apiVersion: "ipam.mandelsoft.org/v1alpha1",
      kind: "ClusterIPAMRange",
      metadata: { name: "p" },
      spec: {
        ranges: ["10.0.0.0/8"],
        namespaceSelector: { matchExpressions: [{ key: "a", operator: "In" }] },
      },
    };
    const valid = validateRangeObject(range);
    assert.equal(valid.ok, false);
    assert.match(valid.ok ? "" : valid.message, /^invalid namespaceSelector: matchExpressions\[0\]/);
  });
});

describe("pool references", () => {
  it("keys an IPAMRange as namespace/name and a ClusterIPAMRange as its name, and back", () => {
    assert.equal(poolKey(rangePool("net", "pods")), "net/pods");
    assert.equal(poolKey(clusterPool("pods")), "pods");
    assert.deepEqual(parsePoolKey("net/pods"), rangePool("net", "pods"));
    assert.deepEqual(parsePoolKey("pods"), clusterPool("pods"));
    assert.equal(describePool(rangePool("net", "pods")), "IPAMRange net/pods");
    assert.equal(describePool(clusterPool("pods")), "ClusterIPAMRange pods");
  });

  it("puts a cluster range's records in the cluster allocation namespace, an IPAMRange's at home", () => {
    assert.equal(recordNamespace(rangePool("net", "pods"), "kube-system"), "net");
    assert.equal(recordNamespace(clusterPool("pods"), "kube-system"), "kube-system");
  });

  it("names a cluster range's records apart from every IPAMRange's, whatever its name", () => {
    for (const cidr of ["10.0.0.0/24", "fd00::/64", "::1/128", "10.1.2.3/32"]) {
      const cluster = recordName(clusterPool("pods"), cidr);
      assert.equal(recordName(rangePool("kube-system", "pods"), cidr), allocationName("pods", cidr));
      assert.match(cluster, /^pods\.cluster-[0-9a-f-]+$/);
      // An IPAMRange record's last label is the block alone: hex digits and dashes.
      for (const name of ["pods", "pods.cluster", "pods.c", "p"]) {
        assert.notEqual(allocationName(name, cidr), cluster);
        assert.match(allocationName(name, cidr).split(".").pop() ?? "", /^[0-9a-f-]+$/);
      }
    }
    const long = "x".repeat(250);
    const name = recordName(clusterPool(long), "fd00:1234:5678:9abc:def0:1234:5678:9abc/128");
    assert.ok(name.length <= 253, `${name.length}`);
    assert.match(name.split(".").pop() ?? "", /^cluster-/);
  });

  it("reads a record's pool: kind absent is IPAMRange; a cluster record counts only in the cluster namespace", () => {
    const record = (namespace: string, kind?: string) => ({
      metadata: { namespace },
      spec: { range: { name: "pods", ...(kind ? { kind } : {}) } },
    });
    assert.deepEqual(poolOfRecord(record("net"), "kube-system"), rangePool("net", "pods"));
    assert.deepEqual(poolOfRecord(record("net", "IPAMRange"), "kube-system"), rangePool("net", "pods"));
    assert.deepEqual(
      poolOfRecord(record("kube-system", "ClusterIPAMRange"), "kube-system"),
      clusterPool("pods"),
    );
    assert.equal(poolOfRecord(record("net", "ClusterIPAMRange"), "kube-system"), undefined);
    assert.equal(poolOfRecord(record("net", "Other"), "kube-system"), undefined);
  });
});

describe("spec.ipam.kind", () => {
  const request = (ipam: IPAMRequest["spec"]["ipam"]): IPAMRequest => ({
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMRequest",
    metadata: { name: "r", namespace: "shop" },
    spec: { ipam },
  });

  it("defaults to IPAMRange in the request's namespace", () => {
    assert.deepEqual(rangeRefOf(request({ name: "pods" })), rangePool("shop", "pods"));
    assert.deepEqual(rangeRefOf(request({ name: "pods", namespace: "net" })), rangePool("net", "pods"));
    assert.deepEqual(rangeRefOf(request({ name: "pods", kind: "ClusterIPAMRange" })), clusterPool("pods"));
  });

  it("refuses a namespace with a ClusterIPAMRange, an unknown kind and a missing name", () => {
    assert.deepEqual(rangeRefOf(request({ name: "pods", kind: "ClusterIPAMRange", namespace: "net" })), {
      ok: false,
      message:
        'spec.ipam.namespace must be empty for a ClusterIPAMRange (it is cluster-scoped): remove "net"',
    });
    assert.deepEqual(rangeRefOf(request({ name: "pods", kind: "Subnet" })), {
      ok: false,
      message: 'invalid spec.ipam.kind "Subnet": use IPAMRange or ClusterIPAMRange',
    });
    assert.deepEqual(rangeRefOf(request({ kind: "ClusterIPAMRange" })), {
      ok: false,
      message: "ClusterIPAMRange object not specified",
    });
    assert.deepEqual(rangeRefOf(request({})), { ok: false, message: "IPAMRange object not specified" });
  });
});

describe("the ClusterIPAMRange CRD", () => {
  type Crd = {
    metadata: { name: string };
    spec: {
      scope: string;
      versions: {
        schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } };
        additionalPrinterColumns: { name: string }[];
      }[];
    };
  };
  const crds = crdManifests() as unknown as Crd[];
  const byName = (name: string) => crds.find((c) => c.metadata.name === name) as Crd;
  const range = byName("ipamranges.ipam.mandelsoft.org");
  const clusterRange = byName("clusteripamranges.ipam.mandelsoft.org");

  it("is cluster-scoped, has every IPAMRange spec field but allowedNamespaces, plus namespaceSelector", () => {
    assert.equal(clusterRange.spec.scope, "Cluster");
    const fields = (c: Crd) =>
      Object.keys(c.spec.versions[0]?.schema.openAPIV3Schema.properties.spec.properties ?? {});
    assert.deepEqual(
      fields(clusterRange).sort(),
      [...fields(range).filter((k) => k !== "allowedNamespaces"), "namespaceSelector"].sort(),
    );
    const columns = (c: Crd) => c.spec.versions[0]?.additionalPrinterColumns.map((x) => x.name);
    assert.deepEqual(columns(clusterRange), columns(range));
  });
});

describe("views of a cluster range", () => {
  const cluster: ClusterIPAMRange = {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "ClusterIPAMRange",
    metadata: { name: "pods", uid: "uid-c" },
    spec: { ranges: ["10.0.0.0/16"] },
    status: { state: "Ready" },
  };
  const record = (
    namespace: string,
    kind: "IPAMRange" | "ClusterIPAMRange",
    cidr: string,
  ): IPAMAllocation => ({
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMAllocation",
    metadata: {
      name:
        kind === "ClusterIPAMRange" ? recordName(clusterPool("pods"), cidr) : allocationName("pods", cidr),
      namespace,
    },
    spec: {
      range: { kind, name: "pods", uid: kind === "ClusterIPAMRange" ? "uid-c" : "uid-n" },
      cidr,
      request: { namespace: "shop", name: `r-${cidr}`, uid: `uid-${cidr}` },
    },
  });
  const records = [
    record("kube-system", "ClusterIPAMRange", "10.0.0.0/24"),
    record("kube-system", "ClusterIPAMRange", "10.0.1.0/24"),
    // An IPAMRange kube-system/pods: not the cluster range's.
    record("kube-system", "IPAMRange", "10.0.2.0/24"),
  ];

  it("usage counts only the cluster range's records and adds a KIND column", () => {
    const [row] = usageRows([cluster], records);
    assert.equal(row?.kind, "ClusterIPAMRange");
    assert.equal(row?.allocated, 512n);
    assert.equal(row?.allocations, 2);
    const text = renderUsage(usageRows([cluster], records));
    assert.match(text.split("\n")[0] ?? "", /^KIND\s+NAME\s+FAMILY/);
    assert.match(text, /ClusterIPAMRange\s+pods\s+IPv4\s+65536\s+512\s+65024/);
  });

  it("show names the kind and its waiting requests; check finds nothing wrong", () => {
    const requests: IPAMRequest[] = ["10.0.0.0/24", "10.0.1.0/24"].map((cidr) => ({
      apiVersion: "ipam.mandelsoft.org/v1alpha1",
      kind: "IPAMRequest",
      metadata: { name: `r-${cidr}`, namespace: "shop", uid: `uid-${cidr}` },
      spec: { ipam: { kind: "ClusterIPAMRange", name: "pods" } },
      status: { state: "Ready", cidr },
    }));
    const waiting: IPAMRequest = {
      apiVersion: "ipam.mandelsoft.org/v1alpha1",
      kind: "IPAMRequest",
      metadata: { name: "w", namespace: "other", uid: "uid-w" },
      spec: { ipam: { kind: "ClusterIPAMRange", name: "pods" } },
      status: { state: "Busy", message: "allocation with size 8 failed" },
    };
    const clusterRecords = records.slice(0, 2);
    const view = showRange(cluster, clusterRecords, [...requests, waiting]);
    assert.equal(view.kind, "ClusterIPAMRange");
    assert.deepEqual(
      view.waiting.map((w) => `${w.namespace}/${w.name}`),
      ["other/w"],
    );
    assert.deepEqual(findProblems({ ranges: [cluster], allocations: clusterRecords, requests }), []);
    // A cluster range's record outside the cluster allocation namespace is not counted: reported.
    const stray = { ...record("shop", "ClusterIPAMRange", "10.0.9.0/24") };
    const findings = findProblems({ ranges: [cluster], allocations: [...clusterRecords, stray], requests });
    assert.deepEqual(
      findings.map((x) => `${x.kind} ${x.range}`),
      ["OrphanAllocation ClusterIPAMRange/pods"],
    );
  });
});

describe("metrics of both kinds", () => {
  it("label usage gauges and counters with the kind", async () => {
    const registry = new Registry();
    const metrics = new PrometheusIpamMetrics(registry);
    const usage = { size: 256n, allocated: 16n, free: 232n, excluded: 5n, cooling: 3n };
    metrics.rangeUsage(clusterPool("pods"), usage);
    metrics.rangeUsage(rangePool("net", "pods"), { ...usage, size: 65536n, allocated: 0n, free: 65528n });
    metrics.allocated(clusterPool("pods"), 0.5);
    const text = await registry.metrics();
    assert.match(
      text,
      /kubipam_range_allocated_addresses\{kind="ClusterIPAMRange",namespace="",range="pods"\} 16/,
    );
    assert.match(
      text,
      /kubipam_range_free_addresses\{kind="ClusterIPAMRange",namespace="",range="pods"\} 232/,
    );
    assert.match(
      text,
      /kubipam_range_excluded_addresses\{kind="ClusterIPAMRange",namespace="",range="pods"\} 5/,
    );
    assert.match(text, /kubipam_range_cooling_addresses\{kind="IPAMRange",namespace="net",range="pods"\} 3/);
    assert.match(text, /kubipam_range_size_addresses\{kind="IPAMRange",namespace="net",range="pods"\} 65536/);
    assert.match(text, /kubipam_allocations_total\{kind="ClusterIPAMRange",range="pods"\} 1/);
    metrics.rangeGone(clusterPool("pods"));
    assert.doesNotMatch(await registry.metrics(), /kind="ClusterIPAMRange",namespace=""/);
  });
});

describe("the reconcilers on a cluster range (faked ports)", () => {
  const range: ClusterIPAMRange = {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "ClusterIPAMRange",
    metadata: { name: "pods", uid: "uid-c", generation: 1, finalizers: ["mandelsoft.org/ipam"] },
    spec: { ranges: ["10.0.0.0/16"], chunkSize: 24, namespaceSelector: { matchLabels: { team: "blue" } } },
  };
  const namespaces = [
    { metadata: { name: "shop", labels: { team: "blue" } } },
    { metadata: { name: "other", labels: { team: "red" } } },
  ];
  const request = (namespace: string): IPAMRequest => ({
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMRequest",
    metadata: { name: "r", namespace, uid: `uid-${namespace}`, generation: 1, resourceVersion: "3" },
    spec: { ipam: { kind: "ClusterIPAMRange", name: "pods" } },
  });

  function run(requests: IPAMRequest[]) {
    const created: IPAMAllocation[] = [];
    const statuses = new Map<string, { state?: string; message?: string; cidr?: string }>();
    const writer: Partial<IpamWriter> = {
      createAllocation: async (a) => {
        created.push(a);
        return { ...a, metadata: { ...a.metadata, uid: "rec-uid" } };
      },
      patchRequestStatus: async (r, status) => {
        statuses.set(`${r.metadata.namespace}/${r.metadata.name}`, status);
        return r;
      },
    };
    const controller = fakeController({ clusterRanges: [range], namespaces, requests }, writer, {
      clusterAllocationNamespace: "ipam-records",
    });
    controller.bootstrap();
    return { controller, created, statuses };
  }

  it("writes the record in the cluster allocation namespace with the cluster name and kind", async () => {
    const { controller, created, statuses } = run([request("shop")]);
    await controller.reconcileRequest("shop/r");
    await controller.published();
    assert.equal(created.length, 1);
    assert.equal(created[0]?.metadata.namespace, "ipam-records");
    assert.equal(created[0]?.metadata.name, "pods.cluster-10-0-0-0-24");
    assert.deepEqual(created[0]?.spec.range, { kind: "ClusterIPAMRange", name: "pods", uid: "uid-c" });
    assert.equal(statuses.get("shop/r")?.cidr, "10.0.0.0/24");
  });

  it("refuses a namespace its selector does not match, naming both, and writes nothing", async () => {
    const { controller, created, statuses } = run([request("other")]);
    await controller.reconcileRequest("other/r");
    assert.equal(created.length, 0);
    assert.deepEqual(
      [statuses.get("other/r")?.state, statuses.get("other/r")?.message],
      [
        "Invalid",
        "ClusterIPAMRange pods does not admit requests from namespace other: its spec.namespaceSelector does not match the namespace's labels",
      ],
    );
  });
});
