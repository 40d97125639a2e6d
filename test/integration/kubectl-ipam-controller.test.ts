// `kubectl ipam` over what the real controller wrote: its figures agree with the range status the
// controller computes, `check` finds nothing in a state the controller made, and a range shrunk under a
// live allocation shows up as a pending removal and as a request outside its range; an exclusion added
// over a held block is a warning only.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ipamRangeResource } from "../../src/api/types.ts";
import { run } from "../../src/cli/kubectl-ipam.ts";
import { type TestCluster, useCluster } from "../harness/index.ts";
import {
  type IpamFixture,
  ipamFixture,
  type RunningController,
  runControllerInProcess,
} from "../harness/ipam.ts";

let cluster: TestCluster;
let controller: RunningController | undefined;
let f: IpamFixture;

async function ipam(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await run([...argv, "--kubeconfig", cluster.kubeconfigPath, "-n", f.namespace], {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

before(async () => {
  cluster = await useCluster();
  f = ipamFixture(cluster, await cluster.createNamespace("ipam-plugin-ctl"));
  controller = await runControllerInProcess(cluster);
});

after(async () => {
  await controller?.stop();
  f?.client.close();
});

describe("kubectl ipam over a controller's work", { concurrency: false }, () => {
  it("agrees with the range status and finds no problem", async () => {
    await f.range("pool", { ranges: ["10.20.0.0/24", "10.20.1.0-10.20.1.9"], chunkSize: 26 });
    // One after the other: concurrent requests may be served in any order.
    for (const name of ["a", "b", "c"]) {
      await f.request(name, { ipam: { name: "pool" } });
      await f.settled(name, (r) => r.status?.state === "Ready");
    }
    await f.request("single", { ipam: { name: "pool" }, size: 32 });
    await f.settled("single", (r) => r.status?.state === "Ready");
    await f.deleteRequest("b");
    const range = await f.rangeSettled("pool", (r) => r.status?.allocated === "129");

    const usage = await ipam("usage", "pool", "-o", "json");
    assert.equal(usage.code, 0, usage.stderr);
    const [row] = (JSON.parse(usage.stdout) as { items: { size: string; allocated: string; free: string }[] })
      .items;
    assert.deepEqual(
      [row?.size, row?.allocated, row?.free],
      [range.status?.size, range.status?.allocated, range.status?.free],
    );
    assert.equal(row?.size, "266");

    const show = await ipam("show", "pool", "-o", "json");
    const view = JSON.parse(show.stdout) as {
      blocks: { cidr: string; request: { name: string }; holder: string }[];
    };
    for (const name of ["a", "c", "single"]) {
      const request = await f.getRequest(name);
      const block = view.blocks.find((b) => b.cidr === request?.status?.cidr);
      assert.equal(block?.request.name, name);
      assert.equal(block?.holder, "Live");
    }
    assert.equal(view.blocks.length, 3);

    const check = await ipam("check");
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });

  it("shows a shrunk range's held block as pending removal, and check flags the request outside", async () => {
    const a = await f.getRequest("a");
    const cidr = a?.status?.cidr;
    assert.equal(cidr, "10.20.0.0/26");
    // Keep everything but the first /26.
    await f.client.patch(
      ipamRangeResource,
      "pool",
      { spec: { ranges: ["10.20.0.64-10.20.0.255", "10.20.1.0-10.20.1.9"] } },
      { namespace: f.namespace, patchType: "merge" },
    );
    await f.rangeSettled("pool", (r) => (r.status?.pendingRemovals ?? []).includes("10.20.0.0/26"));

    const usage = await ipam("usage", "pool", "-o", "json");
    const [row] = (JSON.parse(usage.stdout) as { items: { size: string; pendingRemovals: string[] }[] })
      .items;
    assert.equal(row?.size, "202");
    assert.deepEqual(row?.pendingRemovals, ["10.20.0.0/26"]);

    const check = await ipam("check", "-o", "json");
    assert.equal(check.code, 1, check.stdout + check.stderr);
    const { findings } = JSON.parse(check.stdout) as {
      findings: { kind: string; name: string; cidr: string }[];
    };
    assert.deepEqual(
      findings.map((x) => `${x.kind} ${x.name} ${x.cidr}`),
      ["OutsideRange a 10.20.0.0/26"],
    );
  });

  it("check warns of a block held over an exclusion added after it, and exits 0", async () => {
    const c = await f.getRequest("c");
    const cidr = c?.status?.cidr ?? "";
    const first = cidr.split("/")[0] ?? "";
    assert.match(first, /^10\.20\.0\.\d+$/);
    // The pool back to what it was (no request outside any more), one address of c's block excluded.
    await f.client.patch(
      ipamRangeResource,
      "pool",
      { spec: { ranges: ["10.20.0.0/24", "10.20.1.0-10.20.1.9"], exclude: [first] } },
      { namespace: f.namespace, patchType: "merge" },
    );
    await f.rangeSettled("pool", (r) => (r.status?.pendingRemovals ?? []).join() === cidr);

    const check = await ipam("check", "-o", "json");
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const data = JSON.parse(check.stdout) as {
      problems: number;
      warnings: number;
      findings: { kind: string; severity: string; cidr: string; message: string }[];
    };
    assert.deepEqual([data.problems, data.warnings], [0, 1]);
    assert.deepEqual(
      data.findings.map((x) => `${x.severity} ${x.kind} ${x.cidr}`),
      [`warning HeldOverExclusion ${cidr}`],
    );
    assert.match(
      data.findings[0]?.message ?? "",
      new RegExp(`kept until IPAMRequest ${f.namespace}/c releases it`),
    );
  });
});
