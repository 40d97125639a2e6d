// Start-up with optional caches that cannot be filled: Cluster API's CRDs served but listing claims
// forbidden (RBAC of an older install), and the ClusterIPAMRange CRD not installed (a `helm upgrade`
// that did not apply CRDs). IPAMRanges are served all the same; a request naming a ClusterIPAMRange is
// told why it waits; claims are served once listing them is allowed, without a restart.

import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { crdManifests } from "../../src/api/crds.ts";
import type { KubeResponse, RequestHook } from "../../src/runtime/kube.ts";
import { claimFixture, readyCondition } from "../harness/claims.ts";
import { installClusterApiCrds, type TestCluster, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let cluster: TestCluster;
let f: IpamFixture;
let controller: RunningController | undefined;
let listingClaimsForbidden = true;

/** Answers 403 to every list of IPAddressClaims while `listingClaimsForbidden`, like missing RBAC. */
const forbidClaimLists: RequestHook = async (req, next) => {
  if (!(listingClaimsForbidden && req.verb === "list" && req.resource === "ipaddressclaims"))
    return next(req);
  const status = {
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    reason: "Forbidden",
    code: 403,
    message: 'ipaddressclaims.ipam.cluster.x-k8s.io is forbidden: cannot list resource "ipaddressclaims"',
  };
  const res: KubeResponse = {
    status: 403,
    headers: { "content-type": "application/json" },
    body: Buffer.from(JSON.stringify(status)),
  };
  return res;
};

before(async () => {
  const withoutClusterRanges = crdManifests().filter(
    (crd) =>
      (crd.metadata as { name?: string } | undefined)?.name !== "clusteripamranges.ipam.mandelsoft.org",
  );
  assert.equal(withoutClusterRanges.length, crdManifests().length - 1);
  cluster = await useCluster({ private: true, crds: withoutClusterRanges });
  await installClusterApiCrds(cluster);
  f = ipamFixture(cluster, await cluster.createNamespace("degraded"));
});

after(async () => {
  await controller?.stop();
  f?.client.close();
});

it("serves IPAMRanges with claims forbidden and no ClusterIPAMRange CRD, and claims once allowed", async () => {
  // Without the fix this never returns: start-up waited for caches that could not be filled.
  controller = await runControllerInProcess(cluster, { hooks: [forbidClaimLists] });
  await f.range("pool", { ranges: ["10.20.0.0/24"] });
  await f.request("req", { ipam: { name: "pool" }, size: 30 });
  assert.equal((await f.settled("req", (r) => r.status?.state === "Ready")).status?.cidr, "10.20.0.0/30");
  await f.request("wide", { ipam: { kind: "ClusterIPAMRange", name: "pods" }, size: 30 });
  const wide = await f.settled("wide", (r) => r.status?.state === "Invalid");
  assert.match(wide.status?.message ?? "", /the ClusterIPAMRange CRD is not installed/);
  // RBAC fixed: the claims' informer, still retrying, syncs and the claim is served.
  const claims = claimFixture(f.client, f.namespace);
  await claims.claim("c", { name: "pool" });
  listingClaimsForbidden = false;
  const claim = await claims.ready("c");
  assert.equal(readyCondition(claim)?.reason, "Ready");
});
