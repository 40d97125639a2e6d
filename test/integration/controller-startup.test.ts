// Start-up of a controller taking over from an earlier one: one list of the allocation objects per
// start, and that list is a read that began after the allocation fence was acquired (the premise of
// "Never twice", step 3) — so the records of the earlier holder are all known before anything is
// handed out. The caches keep compact objects, equal parts shared.

import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import type { KubeRequest, RequestHook } from "../../src/runtime/kube.ts";
import { isAllocated } from "../../src/testing/status.ts";
import { invariantsHold, type TestCluster, useCluster } from "../harness/index.ts";
import { type IpamFixture, ipamFixture, runControllerInProcess, TEST_FENCE } from "../harness/ipam.ts";

let cluster: TestCluster;
let f: IpamFixture;

before(async () => {
  cluster = await useCluster();
  f = ipamFixture(cluster, await cluster.createNamespace("startup"));
});

after(() => f?.client.close());

/** Records, in order, when request and record lists were sent and when fence writes came back. */
function startupRecorder(): { hook: RequestHook; steps: string[] } {
  const steps: string[] = [];
  const isFence = (req: KubeRequest) =>
    req.resource === "leases" &&
    req.name === TEST_FENCE.name &&
    (req.verb === "update" || req.verb === "create");
  const hook: RequestHook = async (req, next) => {
    const listing = req.resource === "ipamallocations" || req.resource === "ipamrequests";
    // A list's first page (further pages carry a continue token).
    if (req.verb === "list" && listing && !req.path.includes("continue=")) {
      steps.push(`${req.resource.slice(4)} listed`);
    }
    const res = await next(req);
    if (isFence(req) && res.status < 300) steps.push("fence written");
    return res;
  };
  return { hook, steps };
}

async function allReady(names: string[]): Promise<string[]> {
  const cidrs: string[] = [];
  for (const name of names) cidrs.push((await f.settled(name, isAllocated)).status?.cidr ?? "");
  return cidrs;
}

it("a restarted controller lists the allocation objects once, after it holds the fence", async () => {
  await f.range("pool", { ranges: ["10.90.0.0/24"], chunkSize: 30 });
  const first = await runControllerInProcess(cluster);
  const earlier = Array.from({ length: 12 }, (_, i) => `early-${i}`);
  try {
    await Promise.all(earlier.map((name) => f.request(name, { ipam: { name: "pool" } })));
    await allReady(earlier);
  } finally {
    await first.stop();
  }

  const recorder = startupRecorder();
  const second = await runControllerInProcess(cluster, { hooks: [recorder.hook] });
  try {
    // Bootstrapped: the ledgers were rebuilt from that one list.
    const steps = recorder.steps.join(", ");
    for (const what of ["allocations listed", "requests listed"]) {
      assert.equal(recorder.steps.filter((s) => s === what).length, 1, `once: ${what} (${steps})`);
    }
    const fenceAt = recorder.steps.indexOf("fence written");
    assert.ok(fenceAt >= 0, "the fence was written");
    assert.ok(
      recorder.steps.indexOf("allocations listed") > fenceAt,
      `records listed after the fence: ${steps}`,
    );
    // Requests too (a standby caches neither): their list is not sent before the fence is held.
    assert.ok(
      recorder.steps.indexOf("requests listed") > fenceAt,
      `requests listed after the fence: ${steps}`,
    );

    // The blocks of the earlier holder are known: new requests get other blocks (the pool has 64).
    const later = Array.from({ length: 12 }, (_, i) => `late-${i}`);
    await Promise.all(later.map((name) => f.request(name, { ipam: { name: "pool" } })));
    const cidrs = [...(await allReady(earlier)), ...(await allReady(later))];
    assert.equal(new Set(cidrs).size, cidrs.length, `a block handed out twice: ${cidrs.join(" ")}`);
    await invariantsHold(f.client, { namespaces: [f.namespace], allReady: true });

    // What the cache keeps: no managedFields, everything the reconcilers read.
    const cached = second.controllers.informers.requests.getByName("late-0", f.namespace);
    const served = await f.getRequest("late-0");
    assert.ok(cached && served, "late-0 is cached and served");
    assert.equal(cached.metadata.managedFields, undefined);
    assert.ok((served.metadata.managedFields ?? []).length > 0, "the server keeps managedFields");
    assert.equal(cached.metadata.uid, served.metadata.uid);
    assert.deepEqual(cached.spec, served.spec);
    // Equal specs are one frozen object in the cache.
    const other = second.controllers.informers.requests.getByName("late-1", f.namespace);
    assert.equal(other?.spec, cached.spec, "late-0 and late-1 share their spec");
    assert.ok(Object.isFrozen(cached.spec));
  } finally {
    await second.stop();
  }
});
