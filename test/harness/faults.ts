// Fault injection for test/faults: request hooks that make a KubeClient's calls fail (before or after
// they reach the API server), a network partition, and a private control plane whose kube-apiserver
// can be killed and restarted on the same address and whose etcd can be compacted.

import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  freePorts,
  installCrds,
  loadKubeconfig,
  loadProjectCrds,
  pollUntil,
  RestClient,
  writeKubeconfig,
} from "../../src/cli/control-plane/index.ts";
import { Janitor } from "../../src/cli/control-plane/janitor.ts";
import {
  type KubeRequest,
  type KubeResponse,
  type RequestHook,
  RequestTimeoutError,
} from "../../src/runtime/kube.ts";
import { resolveTestBinDir } from "./index.ts";

// ------------------------------------------------------------------------------------------------
// Randomness: seeded, so that a failing run can be replayed with KUBIPAM_FAULT_SEED=<seed>.

export type Random = () => number;

/** mulberry32: a small, fast, seeded generator of floats in [0, 1). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `KUBIPAM_FAULT_SEED` if set, else a fresh one (print it: it replays the run's decisions). */
export function faultSeed(): number {
  const given = Number(process.env.KUBIPAM_FAULT_SEED);
  return Number.isInteger(given) ? given : randomBytes(4).readUInt32BE(0);
}

export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function shuffle<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

// ------------------------------------------------------------------------------------------------
// Failing requests

/**
 * How a request fails. `unsent-*` never reach the API server; `applied-*` are sent and applied, and
 * then the caller is told they failed (the ambiguous outcome of a lost answer).
 */
export type FaultKind =
  | "unsent-refused"
  | "unsent-500"
  | "unsent-timeout"
  | "applied-timeout"
  | "applied-reset"
  | "applied-500";

const UNSENT: FaultKind[] = ["unsent-refused", "unsent-500", "unsent-timeout"];
const APPLIED: FaultKind[] = ["applied-timeout", "applied-reset", "applied-500"];
const WRITE_VERBS = ["create", "update", "patch", "delete"];

export interface FaultOptions {
  /** Probability that a write (create, update, patch, delete) fails. */
  writeRate: number;
  /** Probability that a single-object get fails (never applied: reads have no effect). Default 0. */
  readRate?: number;
  /** Of the failing writes, the share that is applied before it fails (default 1/3). */
  appliedShare?: number;
  random: Random;
}

export interface FaultInjector {
  readonly hook: RequestHook;
  /** Faults are injected only while enabled (initially true). */
  enabled: boolean;
  /** Injected faults by kind, and the requests that passed the hook while enabled. */
  readonly counts: Record<FaultKind | "passed", number>;
  /** Injected faults in total. */
  injected(): number;
}

function statusAnswer(code: number, reason: string, message: string): KubeResponse {
  const body = { kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message };
  return {
    status: code,
    headers: { "content-type": "application/json" },
    body: Buffer.from(JSON.stringify(body)),
  };
}

function injectedError(message: string, code: string): Error {
  return Object.assign(new Error(`${message} (injected)`), { code });
}

async function fail(kind: FaultKind, req: KubeRequest, next: (r: KubeRequest) => Promise<KubeResponse>) {
  const what = `${req.verb} ${req.resource}`;
  switch (kind) {
    case "unsent-refused":
      throw injectedError(`connect ECONNREFUSED: ${what}`, "ECONNREFUSED");
    case "unsent-500":
      return statusAnswer(500, "InternalError", `Internal error occurred: ${what} (injected)`);
    case "unsent-timeout":
      throw new RequestTimeoutError(`${what}: no answer (injected)`, req.timeoutMs);
    case "applied-timeout":
      await next(req);
      throw new RequestTimeoutError(`${what}: answer lost (injected)`, req.timeoutMs);
    case "applied-reset":
      await next(req);
      throw injectedError(`socket hang up after ${what}`, "ECONNRESET");
    case "applied-500":
      await next(req);
      // What kube-apiserver says when etcd was slow to confirm a write it then applied.
      return statusAnswer(500, "InternalError", `etcdserver: request timed out: ${what} (injected)`);
  }
}

/** A hook that fails writes (and optionally reads) at random, some of them after applying them. */
export function randomFaults(options: FaultOptions): FaultInjector {
  const counts: Record<FaultKind | "passed", number> = {
    "unsent-refused": 0,
    "unsent-500": 0,
    "unsent-timeout": 0,
    "applied-timeout": 0,
    "applied-reset": 0,
    "applied-500": 0,
    passed: 0,
  };
  const appliedShare = options.appliedShare ?? 1 / 3;
  const pick = (kinds: FaultKind[]): FaultKind =>
    kinds[Math.floor(options.random() * kinds.length)] as FaultKind;
  const injector: FaultInjector = {
    enabled: true,
    counts,
    injected: () => Object.entries(counts).reduce((n, [k, v]) => (k === "passed" ? n : n + v), 0),
    hook: async (req, next) => {
      if (!injector.enabled || req.watch) return next(req);
      const write = WRITE_VERBS.includes(req.verb);
      const rate = write ? options.writeRate : req.verb === "get" ? (options.readRate ?? 0) : 0;
      if (rate === 0 || options.random() >= rate) {
        counts.passed++;
        return next(req);
      }
      const kind = write && options.random() < appliedShare ? pick(APPLIED) : pick(UNSENT);
      counts[kind]++;
      return fail(kind, req, next);
    },
  };
  return injector;
}

export interface Partition {
  readonly hook: RequestHook;
  /** Ends every open watch; until `heal`, requests wait (and time out as the network would let them). */
  cut(): void;
  heal(): void;
  readonly isCut: boolean;
  /** Resources (plural) with a watch open through this client now. */
  openWatches(): string[];
}

/** A network partition between one client and the API server. */
export function partition(): Partition {
  const streams = new Map<Readable, string>();
  let cut = false;
  let healed: Promise<void> = Promise.resolve();
  let release: () => void = () => {};
  const waitForHeal = async (req: KubeRequest): Promise<void> => {
    if (!cut) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RequestTimeoutError(`${req.verb} ${req.resource}: partitioned`, req.timeoutMs)),
        req.timeoutMs,
      );
    });
    const aborted = new Promise<never>((_, reject) => {
      req.signal?.addEventListener("abort", () => reject(req.signal?.reason), { once: true });
    });
    try {
      await Promise.race([healed, timedOut, aborted]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    get isCut() {
      return cut;
    },
    openWatches: () => [...streams.values()],
    hook: async (req, next) => {
      await waitForHeal(req);
      const res = await next(req);
      const stream = res.stream;
      if (stream) {
        if (cut) stream.destroy();
        else {
          streams.set(stream, req.resource);
          stream.once("close", () => streams.delete(stream));
        }
      }
      return res;
    },
    cut() {
      if (cut) return;
      cut = true;
      healed = new Promise((resolve) => {
        release = resolve;
      });
      for (const stream of streams.keys()) stream.destroy();
      streams.clear();
    },
    heal() {
      if (!cut) return;
      cut = false;
      release();
    },
  };
}

// ------------------------------------------------------------------------------------------------
// A private control plane with a restartable kube-apiserver and a compactable etcd

function httpGet(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith("https:") ? https : http;
    const request = client.get(url, { headers, rejectUnauthorized: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.on("error", reject);
  });
}

function httpPostJson(url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const request = http.request(
      url,
      {
        method: "POST",
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    request.on("timeout", () => request.destroy(new Error("timed out")));
    request.on("error", reject);
    request.end(payload);
  });
}

class Child {
  readonly exited: Promise<void>;
  constructor(
    readonly process: ChildProcess,
    readonly logPath: string,
  ) {
    this.exited = new Promise((resolve) => {
      process.once("exit", () => resolve());
      process.once("error", () => resolve());
    });
  }
  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }
  logTail(lines = 20): string {
    try {
      return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}

const live = new Set<RestartableControlPlane>();
process.on("exit", () => {
  for (const plane of live) plane.killNow();
});

/**
 * etcd + kube-apiserver for one test file, like src/cli/control-plane's LocalControlPlane, but the
 * API server can be killed and started again on the same address with the same certificates (clients
 * keep their kubeconfig), and etcd can be compacted.
 */
export class RestartableControlPlane {
  readonly dir: string;
  readonly kubeconfigPath: string;
  readonly #binDir: string;
  readonly #janitor: Janitor;
  readonly #token = randomBytes(32).toString("hex");
  #etcd: Child | undefined;
  #apiserver: Child | undefined;
  #etcdUrl = "";
  #port = 0;
  #kubeConfig: KubeConfig | undefined;
  #apiserverStarts = 0;

  private constructor(binDir: string) {
    this.#binDir = binDir;
    this.dir = mkdtempSync(join(tmpdir(), "kubipam-faults-"));
    this.#janitor = new Janitor(this.dir);
    this.kubeconfigPath = join(this.dir, "kubeconfig");
  }

  /** Starts etcd and kube-apiserver (with `apiserverArgs` added) and installs the project's CRDs. */
  static async start(apiserverArgs: string[] = []): Promise<RestartableControlPlane> {
    const plane = new RestartableControlPlane(await resolveTestBinDir());
    live.add(plane);
    try {
      await plane.#startEtcd();
      plane.#port = (await freePorts(1))[0] ?? 0;
      writeFileSync(join(plane.dir, "tokens.csv"), `${plane.#token},admin,admin,"system:masters"\n`, {
        mode: 0o600,
      });
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      writeFileSync(join(plane.dir, "sa.key"), privateKey.export({ type: "pkcs1", format: "pem" }), {
        mode: 0o600,
      });
      await plane.startApiserver(apiserverArgs);
      writeKubeconfig(plane.kubeconfigPath, {
        server: plane.server,
        caPem: readFileSync(join(plane.dir, "certs", "apiserver.crt"), "utf8"),
        token: plane.#token,
        name: "kubipam-faults",
        user: "admin",
        namespace: "default",
      });
      plane.#kubeConfig = loadKubeconfig(plane.kubeconfigPath);
      const crds = await loadProjectCrds();
      if (crds) await installCrds(new RestClient(plane.kubeConfig), crds);
      return plane;
    } catch (error) {
      await plane.stop();
      throw error;
    }
  }

  get server(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  get kubeConfig(): KubeConfig {
    if (!this.#kubeConfig) throw new Error("control plane not started");
    return this.#kubeConfig;
  }

  get apiserverPid(): number | undefined {
    return this.#apiserver?.running ? this.#apiserver.process.pid : undefined;
  }

  #spawn(name: string, args: string[]): Child {
    const logPath = join(this.dir, `${name}-${name === "etcd" ? 0 : this.#apiserverStarts}.log`);
    const fd = openSync(logPath, "w");
    try {
      const child = spawn(join(this.#binDir, name), args, {
        cwd: this.dir,
        stdio: ["ignore", fd, fd],
        detached: true,
        env: { ...process.env, KUBECONFIG: "/dev/null" },
      });
      if (child.pid !== undefined) this.#janitor.watch(child.pid);
      child.unref();
      return new Child(child, logPath);
    } finally {
      closeSync(fd);
    }
  }

  async #startEtcd(): Promise<void> {
    const [client, peer] = await freePorts(2);
    this.#etcdUrl = `http://127.0.0.1:${client}`;
    const peerUrl = `http://127.0.0.1:${peer}`;
    this.#etcd = this.#spawn("etcd", [
      "--name=faults",
      `--data-dir=${join(this.dir, "etcd")}`,
      `--listen-client-urls=${this.#etcdUrl}`,
      `--advertise-client-urls=${this.#etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=faults=${peerUrl}`,
      "--initial-cluster-state=new",
      "--unsafe-no-fsync",
      "--log-level=warn",
    ]);
    await this.#until(this.#etcd, "etcd", async () => (await httpGet(`${this.#etcdUrl}/health`)) === 200);
  }

  async #until(child: Child, name: string, ready: () => Promise<boolean>): Promise<void> {
    await pollUntil(
      async () => {
        if (!child.running) throw new Error(`${name} exited:\n${child.logTail()}`);
        return (await ready().catch(() => false)) ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 100, description: `${name} to be ready` },
    ).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${child.logTail()}`);
    });
  }

  /** Starts kube-apiserver on this plane's port (the first call picks it); resolves once ready. */
  async startApiserver(extraArgs: string[] = []): Promise<void> {
    if (this.#apiserver?.running) throw new Error("kube-apiserver is running");
    for (let attempt = 1; ; attempt++) {
      this.#apiserverStarts++;
      const child = this.#spawn("kube-apiserver", [
        `--etcd-servers=${this.#etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${this.#port}`,
        `--cert-dir=${join(this.dir, "certs")}`,
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=RBAC",
        `--token-auth-file=${join(this.dir, "tokens.csv")}`,
        `--service-account-key-file=${join(this.dir, "sa.key")}`,
        `--service-account-signing-key-file=${join(this.dir, "sa.key")}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--disable-admission-plugins=ServiceAccount",
        ...extraArgs,
      ]);
      this.#apiserver = child;
      try {
        await this.#until(
          child,
          "kube-apiserver",
          async () =>
            (await httpGet(`${this.server}/readyz`, { Authorization: `Bearer ${this.#token}` })) === 200,
        );
        return;
      } catch (error) {
        // The port is this plane's address; if something took it meanwhile, wait for it to go.
        if (attempt < 5 && /address already in use/i.test(child.logTail())) continue;
        throw error;
      }
    }
  }

  /** Kills kube-apiserver (SIGKILL: no graceful close of watches; SIGTERM: graceful). */
  async stopApiserver(signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): Promise<void> {
    const child = this.#apiserver;
    if (!child?.running) return;
    child.process.ref(); // keep the event loop alive until it is gone
    child.process.kill(signal);
    await child.exited;
  }

  /** etcd's current revision (the resourceVersion of the latest write). */
  async etcdRevision(): Promise<number> {
    const { status, json } = await httpPostJson(`${this.#etcdUrl}/v3/kv/range`, {
      key: Buffer.from("/").toString("base64"),
      count_only: true,
    });
    const revision = Number((json as { header?: { revision?: string } }).header?.revision);
    if (status !== 200 || !Number.isInteger(revision)) {
      throw new Error(`etcd range answered ${status}: ${JSON.stringify(json)}`);
    }
    return revision;
  }

  /** Compacts etcd's history up to `revision`: watches and lists from older revisions get 410. */
  async compact(revision: number): Promise<void> {
    const { status, json } = await httpPostJson(`${this.#etcdUrl}/v3/kv/compaction`, {
      revision: String(revision),
      physical: true,
    });
    if (status !== 200) throw new Error(`etcd compaction answered ${status}: ${JSON.stringify(json)}`);
  }

  async createNamespace(prefix: string): Promise<string> {
    const name = `${prefix}-${randomBytes(3).toString("hex")}`;
    await new RestClient(this.kubeConfig).request("POST", "/api/v1/namespaces", {
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name } },
    });
    return name;
  }

  async stop(): Promise<void> {
    for (const child of [this.#apiserver, this.#etcd]) {
      if (!child?.running) continue;
      child.process.ref();
      child.process.kill("SIGTERM");
      const timer = setTimeout(() => child.process.kill("SIGKILL"), 10_000);
      await child.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 5 });
    this.#janitor.release();
    live.delete(this);
  }

  killNow(): void {
    for (const child of [this.#apiserver, this.#etcd]) if (child?.running) child.process.kill("SIGKILL");
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // the janitor removes it once the processes are gone
    }
  }
}
