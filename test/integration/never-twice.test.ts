// What a user with kubectl can do to kubipam's own records and statuses, and the range lifecycle —
// each a regression test of a way "never twice" or "deletion waits" was once broken.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  ALLOCATION_FINALIZER,
  API_VERSION,
  FINALIZER,
  type IPAMAllocation,
  type IPAMRequest,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
} from "../../src/api/types.ts";
import { allocationName } from "../../src/api/validation.ts";
import type { RequestHook } from "../../src/runtime/kube.ts";
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
let ns: string;
const namespaces: string[] = [];

const ready = (r: IPAMRequest) => r.status?.state === "Ready";
const stateIs = (s: string) => (r: IPAMRequest) => r.status?.state === s;

function noProblems(): Promise<void> {
  return invariantsHold(f.client, { namespaces });
}

async function allocations(range: string): Promise<IPAMAllocation[]> {
  const list = await f.client.listAll<IPAMAllocation>(ipamAllocationResource, { namespace: ns });
  return list.items.filter((a) => a.spec.range.name === range);
}

function forgedAllocation(
  range: { name: string; uid: string },
  cidr: string,
  request: IPAMRequest["metadata"],
) {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMAllocation",
    metadata: { name: allocationName(range.name, cidr), namespace: ns },
    spec: {
      range,
      cidr,
      request: { namespace: request.namespace ?? ns, name: request.name ?? "", uid: request.uid ?? "" },
    },
  };
}

before(async () => {
  cluster = await useCluster();
  ns = await cluster.createNamespace("never-twice");
  namespaces.push(ns);
  f = ipamFixture(cluster, ns);
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  f?.client.close();
});

describe("records a user tampers with", () => {
  it("deleting every IPAMAllocation frees nothing: records stay (finalizer) and a removed one is restored", async () => {
    await f.range("del", { ranges: ["10.80.0.0/30"] });
    await f.request("del-a", { ipam: { name: "del" }, size: 31 });
    const a = await f.settled("del-a", ready);
    for (const record of await allocations("del")) {
      assert.ok(record.metadata.finalizers?.includes(ALLOCATION_FINALIZER), "finalizer set at creation");
      await f.client.delete(ipamAllocationResource, record.metadata.name ?? "", { namespace: ns });
    }
    // Marked for deletion, still there: the block is still guarded.
    const marked = await allocations("del");
    assert.equal(marked.length, 1);
    assert.ok(marked[0]?.metadata.deletionTimestamp);
    await f.request("del-b", { ipam: { name: "del" }, size: 31 });
    await f.request("del-c", { ipam: { name: "del" }, request: a.status?.cidr ?? "" });
    const b = await f.settled("del-b", ready);
    assert.notEqual(b.status?.cidr, a.status?.cidr);
    assert.equal(
      (await f.settled("del-c", stateIs("Busy"))).status?.message,
      `${a.status?.cidr} already busy`,
    );
    // Removing the finalizer by hand lets the record go; kubipam writes it again.
    const name = marked[0]?.metadata.name ?? "";
    const uid = marked[0]?.metadata.uid;
    await f.client.patch(ipamAllocationResource, name, [{ op: "remove", path: "/metadata/finalizers" }], {
      namespace: ns,
      patchType: "json",
    });
    const restored = await eventually(async () => {
      const record = await f.client.get<IPAMAllocation>(ipamAllocationResource, name, { namespace: ns });
      assert.notEqual(record.metadata.uid, uid, "a new record");
      return record;
    });
    assert.equal(restored.spec.request.name, "del-a");
    assert.equal((await f.getRequest("del-c"))?.status?.state, "Busy");
    await noProblems();
  });

  it("a forged record over two Ready blocks does not win on restart", async () => {
    const range = await f.range("forged", { ranges: ["10.81.0.0/24"] });
    await f.request("forged-a", { ipam: { name: "forged" }, size: 28 });
    await f.request("forged-b", { ipam: { name: "forged" }, size: 28 });
    await f.settled("forged-a", ready);
    await f.settled("forged-b", ready);
    await controller.stop();
    await f.client.create(
      ipamAllocationResource,
      forgedAllocation({ name: "forged", uid: range.metadata.uid ?? "" }, "10.81.0.0/24", {
        namespace: ns,
        name: "nobody",
        uid: "00000000-0000-0000-0000-000000000000",
      }),
    );
    controller = await runControllerInProcess(cluster);
    await f.request("forged-c", { ipam: { name: "forged" }, size: 24 });
    const c = await f.settled("forged-c", (r) => Boolean(r.status?.state));
    assert.equal(c.status?.state, "Busy", JSON.stringify(c.status));
    // The forgery is collected; the two /28s keep their records.
    await eventually(async () => assert.deepEqual((await allocations("forged")).length, 2));
    await noProblems();
  });

  it("status.cidr cannot be replaced by removing status", async () => {
    await f.range("status", { ranges: ["10.82.0.0/24"] });
    await f.request("status-a", { ipam: { name: "status" }, size: 28 });
    await f.settled("status-a", ready);
    await assert.rejects(
      f.client.patchStatus(ipamRequestResource, "status-a", [{ op: "remove", path: "/status" }], {
        namespace: ns,
        patchType: "json",
      }),
      (err: { status?: number; message?: string }) =>
        err.status === 422 && /status.cidr never changes/.test(err.message ?? ""),
    );
  });

  it("a status.cidr kubipam did not publish is adopted only when inside, admitted and free", async () => {
    await f.range("adopt", { ranges: ["10.83.0.0/24"] });
    await f.request("adopt-a", { ipam: { name: "adopt" }, size: 28 });
    const a = await f.settled("adopt-a", ready);
    const forge = async (name: string, cidr: string) => {
      // A request written by someone who also writes its status: the controller sees both at once.
      await controller.stop();
      await f.request(name, { ipam: { name: "adopt" }, size: 28 });
      await f.client.patchStatus(
        ipamRequestResource,
        name,
        { status: { state: "Ready", cidr } },
        {
          namespace: ns,
          patchType: "merge",
        },
      );
      controller = await runControllerInProcess(cluster);
    };
    await forge("adopt-taken", a.status?.cidr ?? "");
    await forge("adopt-outside", "10.99.0.0/28");
    await forge("adopt-free", "10.83.0.128/28");
    const taken = await f.settled("adopt-taken", stateIs("Invalid"));
    assert.match(taken.status?.message ?? "", /was not allocated by kubipam and .*held by request/);
    const outside = await f.settled("adopt-outside", stateIs("Invalid"));
    assert.match(outside.status?.message ?? "", /was not allocated by kubipam and is outside IPAMRange/);
    await f.settled("adopt-free", (r) => ready(r) && r.status?.message === "");
    const names = (await allocations("adopt")).map((x) => x.spec.request.name).sort();
    assert.deepEqual(names, ["adopt-a", "adopt-free"]);
    await noProblems();
  });

  it("a forged record naming a waiting request does not become its block unless it fits", async () => {
    const range = await f.range("waiting", { ranges: ["10.84.0.0/24"] });
    await controller.stop();
    const request = await f.request("waiting-a", { ipam: { name: "waiting" }, size: 28 });
    // A /24 for a request that asks for a /28.
    await f.client.create(
      ipamAllocationResource,
      forgedAllocation({ name: "waiting", uid: range.metadata.uid ?? "" }, "10.84.0.0/24", request.metadata),
    );
    controller = await runControllerInProcess(cluster);
    const a = await f.settled("waiting-a", ready);
    assert.equal(a.status?.cidr?.endsWith("/28"), true, a.status?.cidr);
    await eventually(async () =>
      assert.deepEqual(
        (await allocations("waiting")).map((x) => x.spec.cidr),
        [a.status?.cidr],
      ),
    );
    await noProblems();
  });
});

describe("release without a finalizer on the request", () => {
  it("a request deleted while no controller runs is released on the next start", async () => {
    await f.range("down", { ranges: ["10.90.0.0/31"] });
    await f.request("down-a", { ipam: { name: "down" }, size: 31 });
    const a = await f.settled("down-a", ready);
    await controller.stop();
    await f.deleteRequest("down-a");
    assert.equal(await f.getRequest("down-a"), undefined, "gone at once: no finalizer holds it");
    controller = await runControllerInProcess(cluster);
    await f.request("down-b", { ipam: { name: "down" }, size: 31 });
    const b = await f.settled("down-b", ready);
    assert.equal(b.status?.cidr, a.status?.cidr, "the block was released and handed out again");
    await eventually(async () =>
      assert.deepEqual(
        (await allocations("down")).map((x) => x.spec.request.name),
        ["down-b"],
      ),
    );
    await noProblems();
  });

  it("a request deleted and re-created under the same name at once is a new request", async () => {
    await f.range("again", { ranges: ["10.90.1.0/31"] });
    await f.request("same", { ipam: { name: "again" }, size: 32 });
    const first = await f.settled("same", ready);
    await f.deleteRequest("same");
    await f.request("same", { ipam: { name: "again" }, size: 32 });
    const second = await f.settled("same", (r) => ready(r) && r.metadata.uid !== first.metadata.uid);
    await eventually(async () => {
      const records = await allocations("again");
      assert.deepEqual(
        records.map((x) => x.spec.request.uid),
        [second.metadata.uid],
      );
    });
    await noProblems();
  });

  it("a request with the finalizer of the original kubipam is released and freed of it", async () => {
    await f.range("legacy", { ranges: ["10.90.2.0/31"] });
    await f.client.create(ipamRequestResource, {
      apiVersion: API_VERSION,
      kind: "IPAMRequest",
      metadata: { name: "old", namespace: ns, finalizers: [FINALIZER] },
      spec: { ipam: { name: "legacy" }, size: 31 },
    });
    await f.settled("old", ready);
    await f.deleteRequest("old");
    await eventually(async () => assert.equal(await f.getRequest("old"), undefined), { timeoutMs: 20_000 });
    await eventually(async () => assert.deepEqual(await allocations("legacy"), []));
  });
});

describe("range lifecycle", () => {
  it("a range deleted right after its first request became Ready waits for it", async () => {
    await f.range("quick", { ranges: ["10.85.0.0/24"] });
    await f.request("quick-a", { ipam: { name: "quick" } });
    await f.settled("quick-a", ready);
    await f.deleteRange("quick");
    const range = await f.rangeSettled("quick", (r) => r.status?.state === "Deleting");
    assert.equal(range.status?.message, "waiting for pending requests to be deleted");
    await f.deleteRequest("quick-a");
    await eventually(async () => assert.equal(await f.getRange("quick"), undefined), { timeoutMs: 20_000 });
  });

  it("a Deleting range goes once its last holder and waiting request are gone, in any order", async () => {
    await f.range("order", { ranges: ["10.86.0.0/24"] });
    await f.request("order-a", { ipam: { name: "order" } });
    await f.settled("order-a", ready);
    await f.deleteRange("order");
    await f.rangeSettled("order", (r) => r.status?.state === "Deleting");
    await f.request("order-b", { ipam: { name: "order" } });
    const b = await f.settled("order-b", stateIs("Invalid"));
    assert.match(b.status?.message ?? "", /is being deleted/);
    await f.deleteRequest("order-a");
    await f.deleteRequest("order-b");
    await eventually(async () => assert.equal(await f.getRange("order"), undefined), { timeoutMs: 20_000 });
  });

  it("a range with a 253-character name allocates", async () => {
    const name = `${"r".repeat(120)}.${"s".repeat(132)}`;
    assert.equal(name.length, 253);
    await f.range(name, { ranges: ["10.87.0.0/24"] });
    await f.request("long", { ipam: { name }, size: 28 });
    const r = await f.settled("long", ready);
    assert.equal(r.status?.cidr, "10.87.0.0/28");
    await noProblems();
  });

  it("withdrawn consent flags existing holders", async () => {
    const other = await cluster.createNamespace("never-twice-other");
    namespaces.push(other);
    await f.range("consent", { ranges: ["10.88.0.0/24"], allowedNamespaces: [other] });
    await f.request("guest", { ipam: { name: "consent", namespace: ns } }, other);
    await f.settled("guest", ready, other);
    await f.client.patch(
      ipamRangeResource,
      "consent",
      { spec: { allowedNamespaces: [] } },
      {
        namespace: ns,
        patchType: "merge",
      },
    );
    const guest = await f.settled(
      "guest",
      (r) => r.status?.conditions?.find((c) => c.type === "Admitted")?.status === "False",
      other,
    );
    assert.equal(guest.status?.state, "Ready");
    assert.match(guest.status?.message ?? "", /does not admit requests from namespace/);
    assert.equal(guest.status?.cidr, "10.88.0.0/32");
    await noProblems();
  });
});

describe("writes the API server refuses", () => {
  it("a rejected allocation record surfaces on the request, and it recovers", async () => {
    await f.range("refused", { ranges: ["10.89.0.0/24"] });
    await controller.stop();
    // The API server's own answer to an invalid object, for every record of this range.
    const reject: RequestHook = async (req, next) => {
      if (req.verb !== "create" || req.resource !== "ipamallocations" || !req.body?.includes('"refused"')) {
        return next(req);
      }
      const message =
        'IPAMAllocation.ipam.mandelsoft.org "refused.x" is invalid: metadata.labels: Invalid value';
      const body = {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        code: 422,
        reason: "Invalid",
        message,
      };
      return {
        status: 422,
        headers: { "content-type": "application/json" },
        body: Buffer.from(JSON.stringify(body)),
      };
    };
    controller = await runControllerInProcess(cluster, { hooks: [reject] });
    await f.request("refused-a", { ipam: { name: "refused" } });
    const refused = await f.settled("refused-a", (r) =>
      /rejected by the API server/.test(r.status?.message ?? ""),
    );
    const condition = refused.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(condition?.reason, "Rejected");
    assert.match(refused.status?.message ?? "", /metadata.labels: Invalid value/);
    await controller.stop();
    controller = await runControllerInProcess(cluster);
    await f.settled("refused-a", ready);
    await noProblems();
  });
});
