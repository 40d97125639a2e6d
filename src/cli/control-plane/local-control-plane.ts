// A throwaway Kubernetes control plane on loopback: etcd + kube-apiserver, for `npm start` and tests.
//
// Lifetime: the processes and the temporary folder go away on `stop()`, on process exit (also after
// an uncaught exception), on SIGINT/SIGTERM (unless the caller handles signals itself), and when this
// process dies without running any code (SIGKILL, OOM): see janitor.ts.

import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClusterAccess as KubeConfig } from "../../runtime/kube/cluster-access.ts";
import { KubeClient } from "../../runtime/kube.ts";
import { installCrds } from "./crds.ts";
import { Janitor } from "./janitor.ts";
import { loadKubeconfig, writeKubeconfig } from "./kubeconfig.ts";
import { httpGetStatus, ManagedProcess } from "./managed-process.ts";
import type { Manifest } from "./manifests.ts";
import { freePorts } from "./ports.ts";

export interface LocalControlPlaneOptions {
  /** Folder holding `etcd` and `kube-apiserver` (see scripts/control-plane-binaries.sh). */
  binDir: string;
  /** Parent of the temporary folder (default: the OS temp folder). */
  tmpRoot?: string;
  /** Deadline for etcd and then kube-apiserver to become ready, each (default 90 s). */
  readyTimeoutMs?: number;
  /**
   * Stop on SIGINT/SIGTERM, then re-raise the signal when nobody else listens for it (default true).
   * Pass false when the caller handles signals and calls `stop()` itself.
   */
  handleSignals?: boolean;
  /**
   * Keep the event loop alive while running (default true). With false the process may finish its
   * work and exit; the control plane is then stopped at `beforeExit` (or killed at `exit`).
   */
  keepAlive?: boolean;
  /** Progress messages (default: none). */
  log?: (message: string) => void;
  /** Extra kube-apiserver flags for the first start (e.g. `--watch-cache=false`). */
  apiserverArgs?: string[];
}

const ADMIN_USER = "kubipam-admin";
const BIND_RETRIES = 5;
const ADDRESS_IN_USE = /address already in use|bind: address/i;

// Every control plane of this process that is not stopped yet, for the exit and signal handlers.
const live = new Set<LocalControlPlane>();
let processHooksInstalled = false;
let signalHooksInstalled = false;

function installProcessHooks(): void {
  if (processHooksInstalled) return;
  processHooksInstalled = true;
  // Synchronous last resort: kill the children; the janitor removes the folder once they are gone.
  process.on("exit", () => {
    for (const controlPlane of live) controlPlane.killNow();
  });
  // Lets a process that does not keep the loop alive stop its control planes gracefully at the end.
  process.on("beforeExit", () => {
    for (const controlPlane of live) {
      if (!controlPlane.keepsAlive) void controlPlane.stop();
    }
  });
}

function installSignalHooks(): void {
  if (signalHooksInstalled) return;
  signalHooksInstalled = true;
  const onSignal = (signal: NodeJS.Signals): void => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    const planes = [...live].filter((plane) => plane.handlesSignals);
    void Promise.allSettled(planes.map((plane) => plane.stop())).then(() => {
      // Without other listeners the default action (terminate with this signal) applies again.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

export class LocalControlPlane {
  /** The temporary folder holding data, certificates, logs and the kubeconfig. */
  readonly dir: string;
  readonly kubeconfigPath: string;
  readonly binDir: string;
  readonly keepsAlive: boolean;
  readonly handlesSignals: boolean;
  readonly adminToken: string;
  #server = "";
  #caPem = "";
  #version = "";
  #etcdUrl = "";
  #etcd: ManagedProcess | undefined;
  #apiserver: ManagedProcess | undefined;
  readonly #janitor: Janitor;
  readonly #log: (message: string) => void;
  readonly #readyTimeoutMs: number;
  readonly #apiserverArgs: string[];
  #stopping: Promise<void> | undefined;

  private constructor(options: LocalControlPlaneOptions) {
    this.binDir = options.binDir;
    this.keepsAlive = options.keepAlive ?? true;
    this.handlesSignals = options.handleSignals ?? true;
    this.#log = options.log ?? (() => {});
    this.#readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
    this.#apiserverArgs = options.apiserverArgs ?? [];
    for (const binary of ["etcd", "kube-apiserver"]) {
      if (!existsSync(join(this.binDir, binary))) throw new Error(`${binary} not found in ${this.binDir}`);
    }
    this.dir = mkdtempSync(join(options.tmpRoot ?? tmpdir(), "kubipam-cp-"));
    this.#janitor = new Janitor(this.dir);
    this.kubeconfigPath = join(this.dir, "kubeconfig");
    this.adminToken = randomBytes(32).toString("hex");
  }

  /** Starts etcd and kube-apiserver and resolves once `/readyz` answers 200 to the admin. */
  static async start(options: LocalControlPlaneOptions): Promise<LocalControlPlane> {
    const controlPlane = new LocalControlPlane(options);
    live.add(controlPlane);
    installProcessHooks();
    if (controlPlane.handlesSignals) installSignalHooks();
    try {
      await controlPlane.#start();
      return controlPlane;
    } catch (error) {
      await controlPlane.stop();
      throw error;
    }
  }

  /** `https://127.0.0.1:<port>` */
  get server(): string {
    return this.#server;
  }

  /** PEM bundle of the self-signed serving certificate (from `--cert-dir`). */
  get caPem(): string {
    return this.#caPem;
  }

  /** kube-apiserver's `/version` gitVersion, e.g. `v1.34.4`. */
  get version(): string {
    return this.#version;
  }

  get etcdUrl(): string {
    return this.#etcdUrl;
  }

  /** Process ids of etcd and kube-apiserver (while running). */
  get pids(): number[] {
    return [this.#etcd, this.#apiserver].flatMap((p) => (p?.running && p.child.pid ? [p.child.pid] : []));
  }

  get running(): boolean {
    return this.#stopping === undefined && this.#apiserver?.running === true;
  }

  /** The admin's access (loaded from this control plane's kubeconfig only). */
  kubeConfig(): KubeConfig {
    return loadKubeconfig(this.kubeconfigPath);
  }

  /** An admin client (close it when done). */
  client(): KubeClient {
    return new KubeClient(this.kubeConfig(), { userAgent: "kubipam-control-plane" });
  }

  /** Applies CRDs and waits until they are Established and served. */
  async installCrds(manifests: string | object | readonly object[], timeoutMs = 60_000): Promise<Manifest[]> {
    const client = this.client();
    try {
      return await installCrds(client, manifests, { timeoutMs });
    } finally {
      client.close();
    }
  }

  async #start(): Promise<void> {
    const started = Date.now();
    const { tokenFile, saKeyFile } = this.#files();
    writeFileSync(tokenFile, `${this.adminToken},${ADMIN_USER},${ADMIN_USER},"system:masters"\n`, {
      mode: 0o600,
    });
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(saKeyFile, privateKey.export({ type: "pkcs1", format: "pem" }), { mode: 0o600 });

    await this.#startEtcd();
    this.#log(`etcd ready at ${this.#etcdUrl} after ${Date.now() - started} ms`);
    await this.#startApiserver(() => freePorts(1), this.#apiserverArgs);
    this.#log(`kube-apiserver ready at ${this.#server} after ${Date.now() - started} ms`);

    this.#caPem = readFileSync(join(this.dir, "certs", "apiserver.crt"), "utf8");
    writeKubeconfig(this.kubeconfigPath, {
      server: this.#server,
      caPem: this.#caPem,
      token: this.adminToken,
      name: "kubipam-local",
      user: ADMIN_USER,
      namespace: "default",
    });
    // Also proves that the kubeconfig verifies the serving certificate.
    const client = this.client();
    try {
      const version = await client.request<{ gitVersion?: string }>("GET", "/version");
      this.#version = version.gitVersion ?? "";
    } finally {
      client.close();
    }
  }

  #files(): { tokenFile: string; saKeyFile: string } {
    return { tokenFile: join(this.dir, "tokens.csv"), saKeyFile: join(this.dir, "service-account.key") };
  }

  #spawn(name: string, args: string[]): ManagedProcess {
    const logPath = join(this.dir, `${name}.log`);
    const fd = openSync(logPath, "a"); // appends: a restarted kube-apiserver keeps the earlier log
    let child: ChildProcess;
    try {
      child = spawn(join(this.binDir, name), args, {
        cwd: this.dir,
        stdio: ["ignore", fd, fd],
        detached: true, // own process group: a terminal's Ctrl-C goes to us, and we stop it in order
        env: { ...process.env, KUBECONFIG: "/dev/null" },
      });
    } finally {
      closeSync(fd);
    }
    if (child.pid !== undefined) this.#janitor.watch(child.pid);
    if (!this.keepsAlive) child.unref();
    return new ManagedProcess(name, child, logPath);
  }

  /** Starts a process on the ports `choose` gives, retrying when a port was taken in the meantime. */
  async #startWithPorts(
    name: string,
    choose: () => Promise<number[]>,
    launch: (ports: number[]) => { process: ManagedProcess; ready: () => Promise<boolean> },
  ): Promise<{ process: ManagedProcess; ports: number[] }> {
    for (let attempt = 1; ; attempt++) {
      const ports = await choose();
      const { process: managed, ready } = launch(ports);
      const deadline = Date.now() + this.#readyTimeoutMs;
      let lastError = "";
      for (;;) {
        if (!managed.running) break;
        try {
          if (await ready()) return { process: managed, ports };
        } catch (error) {
          lastError = error instanceof Error ? error.message : String(error);
        }
        if (Date.now() > deadline) {
          await managed.stop(5_000);
          throw new Error(
            `${name} did not become ready within ${this.#readyTimeoutMs} ms (${lastError}); log ${managed.logPath}:\n${managed.logTail()}`,
          );
        }
        await Promise.race([managed.exited, new Promise((resolve) => setTimeout(resolve, 100))]);
      }
      const tail = managed.logTail();
      if (ADDRESS_IN_USE.test(tail) && attempt < BIND_RETRIES) {
        this.#log(`${name}: a port was taken meanwhile, retrying with other ports`);
        continue;
      }
      throw new Error(
        `${name} exited with code ${managed.exitCode} during start-up; log ${managed.logPath}:\n${tail}`,
      );
    }
  }

  async #startEtcd(): Promise<void> {
    const { process: etcd, ports } = await this.#startWithPorts(
      "etcd",
      () => freePorts(2),
      ([client, peer]) => {
        const clientUrl = `http://127.0.0.1:${client}`;
        const peerUrl = `http://127.0.0.1:${peer}`;
        const managed = this.#spawn("etcd", [
          "--name=kubipam",
          `--data-dir=${join(this.dir, "etcd")}`,
          `--listen-client-urls=${clientUrl}`,
          `--advertise-client-urls=${clientUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=kubipam=${peerUrl}`,
          "--initial-cluster-state=new",
          "--unsafe-no-fsync",
          "--log-level=warn",
        ]);
        this.#etcd = managed;
        return {
          process: managed,
          ready: async () => (await httpGetStatus(`${clientUrl}/health`, {})) === 200,
        };
      },
    );
    this.#etcd = etcd;
    this.#etcdUrl = `http://127.0.0.1:${ports[0]}`;
  }

  async #startApiserver(choose: () => Promise<number[]>, extraArgs: string[]): Promise<void> {
    const { tokenFile, saKeyFile } = this.#files();
    const { process: apiserver, ports } = await this.#startWithPorts("kube-apiserver", choose, ([port]) => {
      const managed = this.#spawn("kube-apiserver", [
        `--etcd-servers=${this.#etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${port}`,
        `--cert-dir=${join(this.dir, "certs")}`,
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=RBAC",
        `--token-auth-file=${tokenFile}`,
        `--service-account-key-file=${saKeyFile}`,
        `--service-account-signing-key-file=${saKeyFile}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--disable-admission-plugins=ServiceAccount",
        "--allow-privileged=true",
        ...extraArgs,
      ]);
      this.#apiserver = managed;
      const url = `https://127.0.0.1:${port}/readyz`;
      const headers = { Authorization: `Bearer ${this.adminToken}` };
      return { process: managed, ready: async () => (await httpGetStatus(url, headers)) === 200 };
    });
    this.#apiserver = apiserver;
    this.#server = `https://127.0.0.1:${ports[0]}`;
  }

  /**
   * Starts kube-apiserver again after `stopApiserver`, on the same address with the same certificates
   * (clients keep their kubeconfig), with `extraArgs` instead of the first start's `apiserverArgs`.
   */
  async startApiserver(extraArgs: string[] = []): Promise<void> {
    if (this.#apiserver?.running) throw new Error("kube-apiserver is running");
    if (this.#stopping) throw new Error("the control plane is stopped");
    const port = Number(new URL(this.#server).port);
    await this.#startApiserver(async () => [port], extraArgs);
  }

  /** Ends kube-apiserver only (SIGKILL: watches are cut, not closed; SIGTERM: graceful). */
  stopApiserver(signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    return this.#apiserver?.kill(signal) ?? Promise.resolve();
  }

  /** Stops kube-apiserver, then etcd, and removes the temporary folder. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    try {
      await this.#apiserver?.stop(10_000);
      await this.#etcd?.stop(5_000);
      await rm(this.dir, { recursive: true, force: true, maxRetries: 5 });
      this.#janitor.release();
    } finally {
      live.delete(this);
    }
  }

  /** Synchronous SIGKILL of both processes (for the exit handler). The janitor removes the folder. */
  killNow(): void {
    this.#apiserver?.killNow();
    this.#etcd?.killNow();
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // the janitor retries once the processes are gone
    }
  }
}
