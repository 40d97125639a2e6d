// An IPAddress whose claim went without kubipam's release (its ReleaseAddress finalizer stripped by
// hand): the address is free again, so its IPAddress must not stay behind protected for ever.

import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { ipAddressClaimResource, RELEASE_ADDRESS_FINALIZER } from "../../src/api/cluster-api.ts";
import { claimFixture } from "../harness/claims.ts";
import { eventually, installClusterApiCrds, type TestCluster, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let cluster: TestCluster;
let controller: RunningController;
let f: IpamFixture;

before(async () => {
  cluster = await useCluster();
  await installClusterApiCrds(cluster);
  f = ipamFixture(cluster, await cluster.createNamespace("capi-orphans"));
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  f?.client.close();
});

it("removes the IPAddress of a claim that went without a release", async () => {
  const claims = claimFixture(f.client, f.namespace);
  await f.range("pool", { ranges: ["10.77.0.0/29"] });
  await claims.claim("stripped", { name: "pool" });
  await claims.ready("stripped");
  assert.ok(await claims.getAddress("stripped"), "the claim's IPAddress exists");
  // The finalizer stripped by hand, then the claim deleted: no release runs.
  const claim = await claims.getClaim("stripped");
  const index = claim?.metadata.finalizers?.indexOf(RELEASE_ADDRESS_FINALIZER) ?? -1;
  assert.ok(index >= 0, "the claim carries ReleaseAddress");
  await f.client.patch(
    ipAddressClaimResource,
    "stripped",
    [
      { op: "test", path: `/metadata/finalizers/${index}`, value: RELEASE_ADDRESS_FINALIZER },
      { op: "remove", path: `/metadata/finalizers/${index}` },
    ],
    { namespace: f.namespace, patchType: "json" },
  );
  await claims.deleteClaim("stripped");
  await claims.gone("stripped");
  await eventually(
    async () => assert.equal(await claims.getAddress("stripped"), undefined, "the IPAddress is gone"),
    { timeoutMs: 30_000 },
  );
});
