// A private control plane for one fault-test file: the project's LocalControlPlane, whose
// kube-apiserver can be killed and started again on the same address (clients keep their kubeconfig)
// and whose etcd can be compacted.

import { randomBytes } from "node:crypto";
import {
  compactEtcd,
  etcdRevision,
  LocalControlPlane,
  loadProjectCrds,
} from "../../src/cli/control-plane/index.ts";
import type { ClusterAccess as KubeConfig } from "../../src/runtime/kube/cluster-access.ts";
import { CoreTypes } from "../../src/runtime/kube.ts";
import { resolveTestBinDir } from "./index.ts";

export class RestartableControlPlane {
  private constructor(
    readonly local: LocalControlPlane,
    readonly kubeConfig: KubeConfig,
  ) {}

  /** Starts etcd and kube-apiserver (with `apiserverArgs` added) and installs the project's CRDs. */
  static async start(apiserverArgs: string[] = []): Promise<RestartableControlPlane> {
    const local = await LocalControlPlane.start({
      binDir: await resolveTestBinDir(),
      keepAlive: false, // the test process exits when its tests are done; the control plane goes with it
      apiserverArgs,
    });
    try {
      const crds = await loadProjectCrds();
      if (crds) await local.installCrds(crds);
      return new RestartableControlPlane(local, local.kubeConfig());
    } catch (error) {
      await local.stop();
      throw error;
    }
  }

  get dir(): string {
    return this.local.dir;
  }

  get kubeconfigPath(): string {
    return this.local.kubeconfigPath;
  }

  get server(): string {
    return this.local.server;
  }

  /** Starts kube-apiserver again on the same address; `extraArgs` replace the first start's. */
  startApiserver(extraArgs: string[] = []): Promise<void> {
    return this.local.startApiserver(extraArgs);
  }

  /** Kills kube-apiserver (SIGKILL: no graceful close of watches; SIGTERM: graceful). */
  stopApiserver(signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    return this.local.stopApiserver(signal);
  }

  /** etcd's current revision (the resourceVersion of the latest write). */
  etcdRevision(): Promise<number> {
    return etcdRevision(this.local.etcdUrl);
  }

  /** Compacts etcd's history up to `revision`: watches and lists from older revisions get 410. */
  compact(revision: number): Promise<void> {
    return compactEtcd(this.local.etcdUrl, revision);
  }

  async createNamespace(prefix: string): Promise<string> {
    const name = `${prefix}-${randomBytes(3).toString("hex")}`;
    const client = this.local.client();
    try {
      await client.create(CoreTypes.namespace, { metadata: { name } });
    } finally {
      client.close();
    }
    return name;
  }

  stop(): Promise<void> {
    return this.local.stop();
  }
}
