// A pool that serves Cluster API claims is deleted only once no claim holds an address of it: claims
// are holders like requests (semantics §7 "Deletion waits while anything holds a block of it", §8).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ClaimFixture, claimFixture, readyCondition } from "../harness/claims.ts";
import { eventually, installClusterApiCrds, invariantsHold, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let controller: RunningController;
let f: IpamFixture;
let claims: ClaimFixture;
let ns: string;

before(async () => {
  const cluster = await useCluster();
  await installClusterApiCrds(cluster);
  ns = await cluster.createNamespace("capi-range-deletion");
  f = ipamFixture(cluster, ns);
  claims = claimFixture(f.client, ns);
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  f?.client.close();
});

describe("deleting a pool that claims hold", () => {
  it("waits for the claims, refuses new ones meanwhile, and goes once the last is released", async () => {
    await f.range("pool", { ranges: ["10.30.0.0/29"], prefix: 24 });
    await claims.claim("held", { name: "pool" });
    const held = await claims.ready("held");
    const address = (await claims.getAddress("held"))?.spec.address;
    assert.equal(address, "10.30.0.0");
    assert.equal(readyCondition(held)?.status, "True");

    await f.deleteRange("pool");
    const deleting = await f.rangeSettled("pool", (r) => r.status?.state === "Deleting");
    assert.ok(deleting.metadata.deletionTimestamp, "marked for deletion, kept by its finalizer");
    // A new claim is not served from a pool being deleted; the held one keeps its address.
    await claims.claim("late", { name: "pool" });
    const late = await claims.ready("late", (c) => c?.status === "False" && c.reason === "PoolNotReady");
    assert.match(readyCondition(late)?.message ?? "", /deleted|deleting/i);
    assert.equal((await claims.getAddress("held"))?.spec.address, address);
    assert.ok(await f.getRange("pool"), "still held by claim 'held'");

    await claims.deleteClaim("late");
    await claims.gone("late");
    await claims.deleteClaim("held");
    await claims.gone("held");
    await eventually(async () => assert.equal(await f.getRange("pool"), undefined), { timeoutMs: 30_000 });
    assert.equal(await claims.getAddress("held"), undefined);
    await invariantsHold(f.client, { namespaces: [ns] });
  });
});
