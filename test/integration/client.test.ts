// kubipam/client against the real API server, with the IPAM controller running in this process.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RequestReadyReason } from "../../src/api/conditions.ts";
import { API_VERSION, type IPAMRequest, ipamRequestResource } from "../../src/api/types.ts";
import {
  AddressRequestError,
  ApiError,
  clusterIpamRangeResource,
  getRange,
  isAddressRequestError,
  KubeClient,
  type RequestAddressOptions,
  releaseAddress,
  requestAddress,
  watchRanges,
  watchRequests,
} from "../../src/client/index.ts";
import { explainNotFound } from "../../src/client/requests.ts";
import { CoreTypes, type KubeObject } from "../../src/runtime/kube.ts";
import { eventually, type TestCluster, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let cluster: TestCluster;
let controller: RunningController;
let f: IpamFixture;
let client: KubeClient;
let ns: string;

before(async () => {
  cluster = await useCluster();
  ns = await cluster.createNamespace("client");
  f = ipamFixture(cluster, ns);
  client = new KubeClient(cluster.kubeConfig);
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  client?.close();
  f?.client.close();
});

/** A range that the controller has seen as Ready (so requests against it are not judged too early). */
async function readyRange(name: string, ranges: string[]): Promise<void> {
  await f.range(name, { ranges });
  await f.rangeSettled(name, (r) => r.status?.state === "Ready");
}

async function rejection(p: Promise<unknown>): Promise<AddressRequestError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AddressRequestError) return err;
    throw err;
  }
  assert.fail("expected the call to reject");
}

describe("requestAddress", () => {
  before(() => readyRange("main", ["10.10.0.0/24"]));

  it("creates a request, waits until Ready and returns the CIDR", async () => {
    const owner = await client.create<KubeObject>(CoreTypes.configMap, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "owner-a", namespace: ns },
    });
    const { cidr, request } = await requestAddress({
      client,
      namespace: ns,
      name: "a",
      range: { name: "main" },
      size: 28,
      labels: { app: "demo" },
      ownerReference: {
        apiVersion: "v1",
        kind: "ConfigMap",
        name: "owner-a",
        uid: owner.metadata.uid ?? "",
        controller: true,
      },
    });
    assert.equal(cidr, "10.10.0.0/28");
    assert.equal(request.status?.state, "Ready");
    const stored = await f.getRequest("a");
    assert.equal(stored?.status?.cidr, "10.10.0.0/28");
    assert.equal(stored?.spec.size, 28);
    assert.deepEqual(stored?.metadata.labels, { app: "demo" });
    const raw = await client.get<KubeObject>(ipamRequestResource, "a", { namespace: ns });
    const refs = raw.metadata.ownerReferences;
    assert.deepEqual(
      refs?.map((r) => [r.name, r.uid]),
      [["owner-a", owner.metadata.uid]],
    );
    const ready = stored?.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.reason, RequestReadyReason.Allocated);
  });

  it("adopts an existing request of the same name and spec (idempotent re-run)", async () => {
    const first = await requestAddress({
      client,
      namespace: ns,
      name: "idem",
      range: { name: "main" },
      size: 29,
    });
    const again = await requestAddress({
      client,
      namespace: ns,
      name: "idem",
      range: { name: "main", namespace: ns },
      size: 29,
    });
    assert.equal(again.cidr, first.cidr);
    assert.equal(again.request.metadata.uid, first.request.metadata.uid);
    const concurrent = await Promise.all(
      [1, 2, 3].map(() =>
        requestAddress({ client, namespace: ns, name: "race", range: { name: "main" }, size: 29 }),
      ),
    );
    assert.equal(
      new Set(concurrent.map((r) => `${r.cidr} ${r.request.metadata.uid}`)).size,
      1,
      "one request, one block",
    );
  });

  it("refuses an existing request of the same name with another spec, naming the difference", async () => {
    await requestAddress({ client, namespace: ns, name: "mismatch", range: { name: "main" }, size: 28 });
    const err = await rejection(
      requestAddress({ client, namespace: ns, name: "mismatch", range: { name: "main" }, size: 27 }),
    );
    assert.equal(err.code, "SpecMismatch");
    assert.match(
      err.message,
      /already exists with a different spec \(spec\.size is 28, this call wants 27\)/,
    );
    assert.equal(err.state, "Ready");
    assert.equal((await f.getRequest("mismatch"))?.spec.size, 28, "the existing request is untouched");
  });

  it("rejects an Invalid request with its state, reason and message", async () => {
    const err = await rejection(
      requestAddress({ client, namespace: ns, name: "too-big", range: { name: "main" }, size: 40 }),
    );
    assert.equal(err.code, "Invalid");
    assert.equal(err.state, "Invalid");
    assert.equal(err.reason, RequestReadyReason.Invalid);
    assert.match(err.statusMessage ?? "", /size 40 too large: network 32/);
    assert.match(err.message, /IPAMRequest .*\/too-big is Invalid: size 40 too large/);
    assert.ok(await f.getRequest("too-big"), "without deleteOnFailure the request stays");
  });

  it("deletes the failed request when asked to", async () => {
    const err = await rejection(
      requestAddress({
        client,
        namespace: ns,
        name: "gone-range",
        range: { name: "no-such-range" },
        deleteOnFailure: true,
      }),
    );
    assert.equal(err.code, "Invalid");
    assert.match(err.statusMessage ?? "", /IPAMRange .*\/no-such-range not found/);
    await eventually(async () => assert.equal(await f.getRequest("gone-range"), undefined));
  });

  it("rejects bad options before talking to the API server", async () => {
    // Cast: the types already refuse most of these.
    const call = (o: Record<string, unknown>) => () =>
      requestAddress({
        client,
        namespace: ns,
        name: "x",
        range: { name: "main" },
        ...o,
      } as RequestAddressOptions);
    assert.throws(call({ size: 24, request: "/24" }), /give size or request, not both/);
    assert.throws(call({ name: "" }), /name must be a non-empty string/);
    assert.throws(call({ timeoutMs: -1 }), /timeoutMs must be a positive number/);
    assert.equal(await f.getRequest("x"), undefined);
  });
});

describe("a full range", () => {
  before(async () => {
    await readyRange("tiny", ["10.20.0.0/30"]);
    await requestAddress({ client, namespace: ns, name: "holder", range: { name: "tiny" }, size: 30 });
  });

  it("times out while Busy, says so, and leaves the request in place", async () => {
    // Busy before the call, so the call's first look sees it (a fresh request might not have a status
    // within the timeout on a loaded machine).
    await f.request("waiter", { ipam: { name: "tiny" }, size: 30 });
    await f.settled("waiter", (r) => r.status?.state === "Busy");
    const err = await rejection(
      requestAddress({
        client,
        namespace: ns,
        name: "waiter",
        range: { name: "tiny" },
        size: 30,
        timeoutMs: 1500,
      }),
    );
    assert.equal(err.code, "Timeout");
    assert.equal(err.state, "Busy");
    assert.equal(err.reason, RequestReadyReason.NoSpace);
    assert.match(err.message, /not Ready after 1500 ms, still Busy \(NoSpace\): .*stays in place/);
    assert.equal((await f.getRequest("waiter"))?.status?.state, "Busy");
  });

  it("becomes Ready once the holder releases its block", async () => {
    const waiting = requestAddress({
      client,
      namespace: ns,
      name: "waiter",
      range: { name: "tiny" },
      size: 30,
    });
    assert.equal(await releaseAddress({ client, namespace: ns, name: "holder", wait: true }), true);
    assert.equal((await waiting).cidr, "10.20.0.0/30");
  });

  it("stops waiting when the caller aborts", async () => {
    const abort = new AbortController();
    // Handled from the start: it may reject before the test awaits it.
    const failed = rejection(
      requestAddress({
        client,
        namespace: ns,
        name: "impatient",
        range: { name: "tiny" },
        size: 30,
        signal: abort.signal,
      }),
    );
    await f.settled("impatient", (r) => r.status?.state === "Busy");
    abort.abort(new Error("caller gave up"));
    const err = await failed;
    assert.equal(err.code, "Aborted");
    // The state is whatever this call's watch saw last (Busy, or no status yet if that event is in flight).
    assert.match(err.message, /\/impatient: wait aborted; last status /);
    assert.ok(await f.getRequest("impatient"), "the request stays");
  });

  it("reports a request deleted while waiting", async () => {
    // Handled from the start: it may reject before the test awaits it.
    const failed = rejection(
      requestAddress({
        client,
        namespace: ns,
        name: "doomed",
        range: { name: "tiny" },
        size: 30,
      }),
    );
    await f.settled("doomed", (r) => r.status?.state === "Busy");
    await f.deleteRequest("doomed");
    const err = await failed;
    assert.equal(err.code, "Deleted");
    assert.equal(err.state, "Busy", "the error shows the last state seen");
  });
});

describe("releaseAddress and getRange", () => {
  before(() => readyRange("usage", ["10.30.0.0/24"]));

  it("shows usage, releases the block and waits until the request is gone", async () => {
    await requestAddress({ client, namespace: ns, name: "u1", range: { name: "usage" }, size: 26 });
    const held = await eventually(async () => {
      const info = await getRange({ client, namespace: ns, name: "usage" });
      assert.equal(info?.usage?.allocated, 64n);
      return info;
    });
    assert.deepEqual(held?.usage, { size: 256n, allocated: 64n, free: 192n });
    assert.equal(held?.state, "Ready");
    assert.equal(await releaseAddress({ client, namespace: ns, name: "u1", wait: true }), true);
    assert.equal(await f.getRequest("u1"), undefined);
    await eventually(async () => {
      const info = await getRange({ client, namespace: ns, name: "usage" });
      assert.deepEqual(info?.usage, { size: 256n, allocated: 0n, free: 256n });
    });
    assert.equal(
      await releaseAddress({ client, namespace: ns, name: "u1" }),
      false,
      "nothing left to delete",
    );
    assert.equal(await getRange({ client, namespace: ns, name: "nope" }), undefined);
  });
});

describe("watchRequests", () => {
  it("yields the list, then changes, until the caller breaks", async () => {
    // The deadline ends the iteration (and fails the test) if the delete is never seen.
    const signal = AbortSignal.timeout(20_000);
    const events = watchRequests({ client, namespace: ns, labelSelector: "watch=yes", signal });
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of events) {
        const r: IPAMRequest = e.object;
        seen.push(`${e.type} ${r.metadata.name} ${r.status?.state ?? "-"}`);
        if (e.type === "Deleted") break;
      }
    })();
    const { cidr } = await requestAddress({
      client,
      namespace: ns,
      name: "watched",
      range: { name: "main" },
      size: 30,
      labels: { watch: "yes" },
    });
    assert.ok(cidr);
    await client.delete(ipamRequestResource, "watched", { namespace: ns });
    await done;
    assert.equal(seen[0]?.startsWith("Added watched"), true, seen.join(", "));
    // Created before or after the watch's first list: it shows up Ready either way.
    assert.ok(
      seen.some((s) => /^(Added|Updated) watched Ready$/.test(s)),
      seen.join(", "),
    );
    assert.equal(seen.at(-1)?.startsWith("Deleted watched"), true);
  });
});

describe("watchRanges", () => {
  it("starts with the existing ranges, marked initial", async () => {
    let seen = 0;
    // The deadline ends the iteration (and fails the test) if the range never shows up.
    const signal = AbortSignal.timeout(10_000);
    for await (const e of watchRanges({
      client,
      namespace: ns,
      fieldSelector: "metadata.name=main",
      signal,
    })) {
      seen++;
      assert.equal(e.type, "Added");
      assert.equal(e.initial, true);
      assert.deepEqual(e.object.spec.ranges, ["10.10.0.0/24"]);
      break;
    }
    assert.equal(seen, 1);
  });
});

describe("connections and kinds", () => {
  it("uses the default kubeconfig chain when given no client", async () => {
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = cluster.kubeconfigPath;
    try {
      const { cidr } = await requestAddress({
        namespace: ns,
        name: "chain",
        range: { name: "main" },
        size: 30,
      });
      assert.match(cidr, /^10\.10\.0\.\d+\/30$/);
      assert.equal((await getRange({ namespace: ns, name: "main" }))?.state, "Ready");
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });

  it("names the cause of a 404 on create: a missing namespace, or kubipam not installed", async () => {
    const missingNamespace = await requestAddress({
      client,
      namespace: "no-such-namespace",
      name: "a",
      range: { name: "main" },
    }).catch((err: unknown) => err);
    assert.ok(missingNamespace instanceof ApiError);
    assert.match(missingNamespace.message, /namespaces "no-such-namespace" not found/);
    // What the API server answers for a resource it does not serve.
    const unserved = await client
      .create(
        { ...clusterIpamRangeResource, plural: "nosuchpools", kind: "NoSuchPool" },
        { apiVersion: API_VERSION, kind: "NoSuchPool", metadata: { name: "x" } },
      )
      .catch((err: unknown) => err);
    const explained = explainNotFound(unserved, "IPAMRequest n/x");
    assert.ok(explained instanceof Error);
    assert.match(
      explained.message,
      /does not serve ipamrequests\.ipam\.mandelsoft\.org\/v1alpha1; is kubipam installed/,
    );
  });

  it("asks a kubipam that serves ClusterIPAMRange: a missing one is Invalid, not Unsupported", async () => {
    // (Unsupported is for a kubipam whose CRD prunes spec.ipam.kind; this cluster's serves the kind.)
    const err = await rejection(
      requestAddress({
        client,
        namespace: ns,
        name: "cluster-kind",
        range: { name: "no-such-cluster-range", kind: "ClusterIPAMRange" },
        deleteOnFailure: true,
      }),
    );
    assert.ok(isAddressRequestError(err, "Invalid"), String(err));
    assert.match(err.message, /ClusterIPAMRange no-such-cluster-range not found/);
    await eventually(async () => assert.equal(await f.getRequest("cluster-kind"), undefined));
  });
});
