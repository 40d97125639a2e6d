// `kubectl ipam` against a real API server. Ranges, requests (with status) and allocation objects are
// written directly, as the controller would have left them (no controller runs here), then the
// plugin's commands read them: in-process through `run`, as a child process, and as a kubectl plugin.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  API_VERSION,
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRangeSpec,
  type IPAMRequest,
  type IPAMRequestStatus,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
  RANGE_LABEL,
} from "../../src/api/types.ts";
import { allocationName } from "../../src/api/validation.ts";
import { run } from "../../src/cli/kubectl-ipam.ts";
import { KubeClient } from "../../src/runtime/kube.ts";
import { type TestCluster, useCluster } from "../harness/index.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PLUGIN = join(ROOT, "src", "cli", "kubectl-ipam.ts");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function ipam(...argv: string[]): Promise<Result> {
  let stdout = "";
  let stderr = "";
  const code = await run(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

function spawnCollect(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Writes objects the way the controller leaves them. */
class World {
  constructor(
    readonly client: KubeClient,
    readonly namespace: string,
  ) {}

  range(name: string, spec: IPAMRangeSpec): Promise<IPAMRange> {
    return this.client.create<IPAMRange>(ipamRangeResource, {
      apiVersion: API_VERSION,
      kind: "IPAMRange",
      metadata: { name, namespace: this.namespace },
      spec,
    });
  }

  async request(
    name: string,
    rangeName: string,
    status?: IPAMRequestStatus,
    size?: number,
  ): Promise<IPAMRequest> {
    const created = await this.client.create<IPAMRequest>(ipamRequestResource, {
      apiVersion: API_VERSION,
      kind: "IPAMRequest",
      metadata: { name, namespace: this.namespace },
      spec: { ipam: { name: rangeName }, ...(size !== undefined ? { size } : {}) },
    });
    if (!status) return created;
    return this.client.patchStatus<IPAMRequest>(
      ipamRequestResource,
      name,
      { status },
      { namespace: this.namespace, patchType: "merge" },
    );
  }

  allocation(
    range: IPAMRange,
    cidr: string,
    holder: { name: string; uid?: string },
    objectName = allocationName(range.metadata.name ?? "", cidr),
  ): Promise<IPAMAllocation> {
    return this.client.create<IPAMAllocation>(ipamAllocationResource, {
      apiVersion: API_VERSION,
      kind: "IPAMAllocation",
      metadata: {
        name: objectName,
        namespace: this.namespace,
        labels: { [RANGE_LABEL]: range.metadata.name ?? "" },
      },
      spec: {
        range: { name: range.metadata.name ?? "", uid: range.metadata.uid ?? "" },
        cidr,
        request: { namespace: this.namespace, name: holder.name, uid: holder.uid ?? "" },
      },
    });
  }

  /** A request holding `cidr`, guarded by its allocation object: a consistent allocation. */
  async held(range: IPAMRange, name: string, cidr: string): Promise<IPAMRequest> {
    const request = await this.request(name, range.metadata.name ?? "", {
      state: "Ready",
      message: "",
      cidr,
    });
    await this.allocation(range, cidr, { name, uid: request.metadata.uid ?? "" });
    return request;
  }
}

let cluster: TestCluster;
let client: KubeClient;
let cleanNs: string;
let brokenNs: string;

before(async () => {
  cluster = await useCluster();
  client = new KubeClient(cluster.kubeConfig);
  cleanNs = await cluster.createNamespace("ipam-plugin");
  brokenNs = await cluster.createNamespace("ipam-plugin-broken");

  // A consistent namespace: an IPv4 and an IPv6 range, three holders and one waiting request.
  const clean = new World(client, cleanNs);
  const pods = await clean.range("pods", { ranges: ["10.0.0.0/16"], chunkSize: 24 });
  const v6 = await clean.range("v6", { ranges: ["fd00::/48"], chunkSize: 64 });
  await clean.held(pods, "a", "10.0.0.0/24");
  await clean.held(pods, "b", "10.0.1.0/24");
  await clean.held(v6, "c", "fd00::/64");
  await clean.held(v6, "d", "fd00:0:0:1::/64");
  await clean.request("waiting", "pods", { state: "Busy", message: "allocation with size 8 failed" }, 8);

  // A broken namespace: one consistent holder and one of each kind of problem.
  const broken = new World(client, brokenNs);
  const net = await broken.range("net", { ranges: ["192.168.0.0/24"], chunkSize: 26 });
  await broken.held(net, "ok", "192.168.0.0/26");
  // An allocation object whose request was deleted (leaked).
  await broken.allocation(net, "192.168.0.64/26", { name: "deleted-request", uid: "00000000-dead" });
  // A second allocation object over the block "ok" holds, for a request that exists.
  const squatter = await broken.request("squatter", "net");
  await broken.allocation(net, "192.168.0.32/27", { name: "squatter", uid: squatter.metadata.uid ?? "" });
  // A request whose CIDR is outside its range (guarded, so that only the range is wrong).
  await broken.held(net, "outside", "10.99.0.0/26");
  // A request that published a CIDR without an allocation object.
  await broken.request("unguarded", "net", { state: "Ready", message: "", cidr: "192.168.0.128/26" });
});

after(() => {
  client?.close();
});

describe("kubectl ipam usage", () => {
  it("shows per-range size, allocated, free, percent and a bar; IPv6 exact", async () => {
    const r = await ipam("usage", "--kubeconfig", cluster.kubeconfigPath, "-n", cleanNs);
    assert.equal(r.code, 0, r.stderr);
    process.stderr.write(`\n$ kubectl ipam usage -n ${cleanNs}\n${r.stdout}\n`);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^NAME +FAMILY +SIZE +ALLOCATED +FREE +USED$/);
    assert.match(lines[1] ?? "", /^pods +IPv4 +65536 +512 +65024 +0\.7% +\[#\.{19}\]$/);
    assert.match(
      lines[2] ?? "",
      /^v6 +IPv6 +1208925819614629174706176 +36893488147419103232 +1208888926126481755602944 +<0\.1% +\[#\.{19}\]$/,
    );
    assert.equal(lines.length, 3);
  });

  it("-o json gives exact decimal strings", async () => {
    const r = await ipam("usage", "--kubeconfig", cluster.kubeconfigPath, "-n", cleanNs, "-o", "json");
    assert.equal(r.code, 0, r.stderr);
    const data = JSON.parse(r.stdout) as {
      items: { name: string; size: string; allocated: string; free: string; allocations: number }[];
    };
    assert.deepEqual(
      data.items.map((i) => [i.name, i.size, i.allocated, i.free, i.allocations]),
      [
        ["pods", "65536", "512", "65024", 2],
        ["v6", "1208925819614629174706176", "36893488147419103232", "1208888926126481755602944", 2],
      ],
    );
  });

  it("one range; -A adds the namespace column; -o wide and yaml", async () => {
    const one = await ipam(
      "usage",
      "pods",
      "--kubeconfig",
      cluster.kubeconfigPath,
      "-n",
      cleanNs,
      "-o",
      "yaml",
    );
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^ {4}allocated: "512"$/m);
    assert.doesNotMatch(one.stdout, /name: v6/);

    const all = await ipam("usage", "-A", "--kubeconfig", cluster.kubeconfigPath);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^NAMESPACE +NAME +FAMILY/);
    assert.match(all.stdout, new RegExp(`^${cleanNs} +pods +IPv4 +65536 +512 `, "m"));
    assert.match(all.stdout, new RegExp(`^${brokenNs} +net +IPv4 +256 `, "m"));

    const wide = await ipam("usage", "--kubeconfig", cluster.kubeconfigPath, "-n", cleanNs, "-o", "wide");
    assert.match(wide.stdout, /^pods .* FirstMatch +2 +\/17 +0 +0 +10\.0\.0\.0\/16$/m);
  });

  it("names a missing range and exits 2", async () => {
    const r = await ipam("usage", "nope", "--kubeconfig", cluster.kubeconfigPath, "-n", cleanNs);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`IPAMRange ${cleanNs}/nope not found`));
  });
});

describe("kubectl ipam show", () => {
  it("says which request holds which block, the free blocks and who waits", async () => {
    const r = await ipam("show", "pods", "--kubeconfig", cluster.kubeconfigPath, "-n", cleanNs);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: +512\/65536 allocated, 65024 free \(0\.7%\)/m);
    assert.match(r.stdout, new RegExp(`^ {2}10\\.0\\.0\\.0/24 +${cleanNs}/a +Ready`, "m"));
    assert.match(r.stdout, new RegExp(`^ {2}10\\.0\\.1\\.0/24 +${cleanNs}/b +Ready`, "m"));
    assert.match(r.stdout, /Free blocks \(7\):\n {2}10\.0\.2\.0\/23\n {2}10\.0\.4\.0\/22\n/);
    assert.match(r.stdout, /Pending removals:\n {2}<none>\n/);
    assert.match(
      r.stdout,
      new RegExp(`Waiting requests:\\n.*\\n {2}${cleanNs}/waiting +Busy +allocation with size 8 failed`),
    );
  });

  it("-o json lists holders and free blocks", async () => {
    const r = await ipam("show", "v6", "--kubeconfig", cluster.kubeconfigPath, "-n", cleanNs, "-o", "json");
    assert.equal(r.code, 0, r.stderr);
    const data = JSON.parse(r.stdout) as {
      blocks: { cidr: string; request: { name: string }; holder: string }[];
      freeBlocks: string[];
    };
    assert.deepEqual(
      data.blocks.map((b) => [b.cidr, b.request.name, b.holder]),
      [
        ["fd00::/64", "c", "Live"],
        ["fd00:0:0:1::/64", "d", "Live"],
      ],
    );
    assert.equal(data.freeBlocks[0], "fd00:0:0:2::/63");
    assert.equal(data.freeBlocks.length, 15);
  });
});

describe("kubectl ipam check", () => {
  it("finds nothing in a consistent namespace and exits 0", async () => {
    const r = await ipam("check", "--kubeconfig", cluster.kubeconfigPath, "-n", cleanNs);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, "No problems found.\n");
  });

  it("names every problem in a broken namespace and exits 1", async () => {
    const r = await ipam("check", "--kubeconfig", cluster.kubeconfigPath, "-n", brokenNs, "-o", "json");
    assert.equal(r.code, 1, r.stderr);
    const data = JSON.parse(r.stdout) as {
      problems: number;
      findings: { kind: string; objectKind: string; name: string; cidr: string; message: string }[];
    };
    assert.deepEqual(
      data.findings.map((f) => `${f.kind} ${f.objectKind}/${f.name} ${f.cidr}`),
      [
        `Overlap IPAMAllocation/${allocationName("net", "192.168.0.32/27")} 192.168.0.32/27`,
        `OrphanAllocation IPAMAllocation/${allocationName("net", "192.168.0.64/26")} 192.168.0.64/26`,
        "MissingAllocation IPAMRequest/unguarded 192.168.0.128/26",
        "OutsideRange IPAMRequest/outside 10.99.0.0/26",
      ],
    );
    assert.equal(data.problems, 4);
    assert.match(
      data.findings[1]?.message ?? "",
      new RegExp(`request ${brokenNs}/deleted-request, which does not exist`),
    );

    const text = await ipam("check", "--kubeconfig", cluster.kubeconfigPath, "-n", brokenNs);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^PROBLEM +OBJECT +RANGE +CIDR +MESSAGE$/m);
    assert.match(
      text.stdout,
      /^OutsideRange +IPAMRequest\/\S+\/outside +\S+\/net +10\.99\.0\.0\/26 +10\.99\.0\.0\/26 is outside/m,
    );
    assert.match(text.stdout, /^4 problems found\.$/m);
  });

  it("needs nothing but read access (get/list), so it cannot change anything", async () => {
    const viewer = `kubipam-viewer-${brokenNs}`;
    const kubeconfig = await cluster.serviceAccountKubeconfig(
      brokenNs,
      "ipam-viewer",
      [
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: { name: viewer },
          rules: [
            {
              apiGroups: ["ipam.mandelsoft.org"],
              resources: ["ipamranges", "ipamrequests", "ipamallocations"],
              verbs: ["get", "list"],
            },
          ],
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: "ipam-viewer" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: viewer },
          subjects: [],
        },
      ],
      { rebind: true },
    );
    const admin = await ipam("check", "--kubeconfig", cluster.kubeconfigPath, "-n", brokenNs, "-o", "json");
    const reader = await ipam("check", "--kubeconfig", kubeconfig, "-n", brokenNs, "-o", "json");
    assert.equal(reader.code, 1, reader.stderr);
    assert.equal(reader.stdout, admin.stdout);
    const usage = await ipam("usage", "--kubeconfig", kubeconfig, "-n", brokenNs);
    assert.equal(usage.code, 0, usage.stderr);
    const show = await ipam("show", "net", "--kubeconfig", kubeconfig, "-n", brokenNs);
    assert.equal(show.code, 0, show.stderr);
    // Its own namespace only: elsewhere it is refused, and says so.
    const denied = await ipam("check", "--kubeconfig", kubeconfig, "-n", cleanNs);
    assert.equal(denied.code, 2);
    assert.match(denied.stderr, /forbidden/i);
  });
});

describe("the executable", () => {
  const env = (): NodeJS.ProcessEnv => ({ ...process.env, KUBECONFIG: cluster.kubeconfigPath });

  it("runs on its own with $KUBECONFIG; the exit status is check's verdict", async () => {
    const ok = await spawnCollect(
      process.execPath,
      ["--import", "tsx", PLUGIN, "check", "-n", cleanNs],
      env(),
    );
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await spawnCollect(
      process.execPath,
      ["--import", "tsx", PLUGIN, "check", "-n", brokenNs],
      env(),
    );
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stdout, /OrphanAllocation/);
  });

  it("works as a kubectl plugin: `kubectl ipam usage`", async (t) => {
    const kubectl = join(cluster.binDir, "kubectl");
    if (!cluster.binDir || !existsSync(kubectl)) {
      t.skip("no kubectl next to the control plane binaries");
      return;
    }
    const bin = mkdtempSync(join(cluster.tmpDir, "plugin-"));
    const wrapper = join(bin, "kubectl-ipam");
    writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" --import tsx "${PLUGIN}" "$@"\n`);
    chmodSync(wrapper, 0o755);
    const r = await spawnCollect(kubectl, ["ipam", "usage", "-n", cleanNs], {
      ...env(),
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      NODE_OPTIONS: "",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pods +IPv4 +65536 +512 +65024 +0\.7%/m);
  });
});
