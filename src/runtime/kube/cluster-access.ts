// What the client needs from a kubeconfig, and kubipam's own reader for the common cases: in-cluster
// service-account config, and kubeconfig files whose user has a token, a token file or a client
// certificate. Those never load @kubernetes/client-node (about 60 MB of a controller's memory); a
// kubeconfig that needs what only client-node does well (exec credential plugins, auth providers,
// basic auth, several files merged) is handed to it (kubeconfig.ts).

import { existsSync, readFileSync } from "node:fs";
import type https from "node:https";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { parse } from "yaml";

/** The part of client-node's KubeConfig the runtime uses; both readers implement it. */
export interface ClusterAccess {
  getCurrentCluster(): { name: string; server: string; skipTLSVerify?: boolean } | null;
  getCurrentContext(): string;
  getContextObject(name: string): { name: string; cluster: string; user: string; namespace?: string } | null;
  /** Sets TLS material and the Authorization header; files (token, certificates) are read each time. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

interface Named<T> {
  name: string;
  [key: string]: unknown;
  value?: T;
}

type Entry = Record<string, unknown>;

/** A kubeconfig reduced to what kubipam reads itself. */
export class LightKubeConfig implements ClusterAccess {
  readonly source = "kubipam";

  private constructor(
    private readonly context: { name: string; cluster: string; user: string; namespace?: string },
    private readonly cluster: Entry & { server: string },
    private readonly user: Entry,
    /** Relative file names in the kubeconfig are relative to its folder. */
    private readonly base: string,
  ) {}

  /**
   * Reads the kubeconfig at `path`, or the default chain (a single-file $KUBECONFIG, ~/.kube/config,
   * in-cluster). Returns undefined when client-node is needed (see the top of this file).
   */
  static load(
    path?: string,
    contextName?: string,
    env: NodeJS.ProcessEnv = process.env,
    serviceAccountDir = SERVICE_ACCOUNT_DIR,
  ): LightKubeConfig | undefined {
    const file = path ?? defaultFile(env, serviceAccountDir);
    if (file === undefined) return undefined;
    if (file === "in-cluster") return LightKubeConfig.inCluster(env, serviceAccountDir);
    const doc = parse(readFileSync(file, "utf8")) as Entry | null;
    if (!doc || typeof doc !== "object") return undefined;
    const name = contextName ?? (typeof doc["current-context"] === "string" ? doc["current-context"] : "");
    const context = find(doc.contexts, "context", name);
    if (!context || typeof context.cluster !== "string" || typeof context.user !== "string") return undefined;
    const cluster = find(doc.clusters, "cluster", context.cluster);
    const user = find(doc.users, "user", context.user) ?? {};
    if (!cluster || typeof cluster.server !== "string" || !supported(user)) return undefined;
    const namespace = typeof context.namespace === "string" ? context.namespace : undefined;
    return new LightKubeConfig(
      { name, cluster: context.cluster, user: context.user, ...(namespace ? { namespace } : {}) },
      { ...cluster, server: cluster.server },
      user,
      dirname(resolve(file)),
    );
  }

  private static inCluster(env: NodeJS.ProcessEnv, dir: string): LightKubeConfig {
    const host = env.KUBERNETES_SERVICE_HOST ?? "";
    const server = `https://${host.includes(":") ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`;
    const namespaceFile = join(dir, "namespace");
    const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, "utf8").trim() : undefined;
    return new LightKubeConfig(
      {
        name: "inClusterContext",
        cluster: "inCluster",
        user: "inClusterUser",
        ...(namespace ? { namespace } : {}),
      },
      { server, "certificate-authority": join(dir, "ca.crt") },
      { tokenFile: join(dir, "token") },
      dir,
    );
  }

  getCurrentCluster(): { name: string; server: string; skipTLSVerify?: boolean } {
    const skip = this.cluster["insecure-skip-tls-verify"] === true;
    return {
      name: this.context.cluster,
      server: this.cluster.server,
      ...(skip ? { skipTLSVerify: true } : {}),
    };
  }

  getCurrentContext(): string {
    return this.context.name;
  }

  getContextObject(name: string): { name: string; cluster: string; user: string; namespace?: string } | null {
    return name === this.context.name ? this.context : null;
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const ca = this.material(this.cluster, "certificate-authority");
    if (ca) opts.ca = ca;
    if (this.cluster["insecure-skip-tls-verify"] === true) opts.rejectUnauthorized = false;
    if (typeof this.cluster["tls-server-name"] === "string")
      opts.servername = this.cluster["tls-server-name"];
    const cert = this.material(this.user, "client-certificate");
    const key = this.material(this.user, "client-key");
    if (cert) opts.cert = cert;
    if (key) opts.key = key;
    const token = this.token();
    if (token) opts.headers = { ...(opts.headers ?? {}), Authorization: `Bearer ${token}` };
  }

  private token(): string | undefined {
    if (typeof this.user.token === "string" && this.user.token) return this.user.token;
    const file = this.user.tokenFile;
    if (typeof file !== "string" || !file) return undefined;
    return readFileSync(this.path(file), "utf8").trim();
  }

  /** `<field>-data` (base64) or `<field>` (a file name). */
  private material(entry: Entry, field: string): Buffer | undefined {
    const data = entry[`${field}-data`];
    if (typeof data === "string" && data) return Buffer.from(data, "base64");
    const file = entry[field];
    return typeof file === "string" && file ? readFileSync(this.path(file)) : undefined;
  }

  private path(file: string): string {
    return isAbsolute(file) ? file : join(this.base, file);
  }
}

/** The one file of the default chain, "in-cluster", or undefined when client-node must merge files. */
function defaultFile(env: NodeJS.ProcessEnv, serviceAccountDir: string): string | undefined {
  const list = (env.KUBECONFIG ?? "").split(delimiter).filter((p) => p !== "");
  if (list.length > 1) return undefined;
  if (list.length === 1) return list[0];
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (existsSync(home)) return home;
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(serviceAccountDir, "token"))) return "in-cluster";
  return home; // missing: reading it fails with the file name in the message
}

/** Users kubipam authenticates itself: token, token file, client certificate (or none). */
function supported(user: Entry): boolean {
  const handledByClientNode = ["exec", "auth-provider", "username", "password", "as", "as-groups"];
  return !handledByClientNode.some((field) => user[field] !== undefined);
}

function find(list: unknown, field: string, name: string): Entry | undefined {
  if (!Array.isArray(list)) return undefined;
  const entry = (list as Named<Entry>[]).find((e) => e?.name === name);
  const value = entry?.[field];
  return value && typeof value === "object" ? (value as Entry) : undefined;
}
