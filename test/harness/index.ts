// Test harness: a real kube-apiserver + etcd for integration tests.
//
// `useCluster()` connects to the run's shared control plane (scripts/run-tests.ts sets
// KUBIPAM_TEST_KUBECONFIG) or, when a test file runs on its own, starts a private one for this
// process that stops when the process finishes (or dies). Each test file should work in its own
// namespace (`createNamespace`). Namespaces are never deleted: without kube-controller-manager they
// would stay Terminating, and the control plane is thrown away after the run anyway.

import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  installCrds,
  isKubeObject,
  KubeApiError,
  type KubeObject,
  LocalControlPlane,
  loadKubeconfig,
  loadProjectCrds,
  type PollOptions,
  parseManifests,
  pollUntil,
  RestClient,
  resolveBinDir,
  writeKubeconfig,
} from "../../src/cli/control-plane/index.ts";

export type { KubeObject } from "../../src/cli/control-plane/index.ts";
export {
  KubeApiError,
  loadKubeconfig,
  parseManifests,
  pollUntil,
  RestClient,
} from "../../src/cli/control-plane/index.ts";

/** Manifests as YAML text (one or more documents), one object, or a list of objects. */
export type Manifests = string | object | readonly object[];

export interface ServiceAccountOptions {
  /**
   * Point the given RBAC at this ServiceAccount: every RoleBinding/ClusterRoleBinding gets it as the
   * only subject, Roles and RoleBindings move into its namespace, and ClusterRoleBindings get the name
   * suffix `-<namespace>-<name>` so that test files binding the same ClusterRole do not overwrite
   * each other's subjects. Meant for the project's own RBAC manifests (default false: as given).
   */
  rebind?: boolean;
  /** Token lifetime (default one day; the API server's minimum is 10 minutes). */
  expirationSeconds?: number;
}

export interface TestCluster {
  /** Admin kubeconfig file (a user in system:masters). */
  readonly kubeconfigPath: string;
  /** client-node KubeConfig loaded from `kubeconfigPath` only. */
  readonly kubeConfig: KubeConfig;
  /** Folder with etcd, kube-apiserver and (when built by the script) kubectl. */
  readonly binDir: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** Admin JSON client (plain objects; see src/cli/control-plane/rest.ts). */
  readonly rest: RestClient;
  /** A folder for this process's files; removed with the control plane or at exit. */
  readonly tmpDir: string;
  /** Creates a namespace `<prefix>-<random>` and returns its name. */
  createNamespace(prefix: string): Promise<string>;
  /**
   * Server-side applies the objects in order (field manager "kubipam-test", forced). Namespaced
   * objects without a namespace go to `options.namespace`. CRDs among them are waited for until
   * Established and served.
   */
  applyManifests(manifests: Manifests, options?: { namespace?: string }): Promise<KubeObject[]>;
  /** Applies CRDs and waits until they are Established and served. */
  installCrds(manifests: Manifests): Promise<KubeObject[]>;
  /**
   * Least-privilege identity: creates ServiceAccount `namespace/name`, applies `rbacManifests`
   * (namespaced ones default to `namespace`), waits until the RBAC authorizer grants what the bindings
   * for this account grant, mints a token with the TokenRequest API and returns the path of a
   * kubeconfig file that authenticates with that token.
   */
  serviceAccountKubeconfig(
    namespace: string,
    name: string,
    rbacManifests: Manifests,
    options?: ServiceAccountOptions,
  ): Promise<string>;
}

export interface UseClusterOptions {
  /**
   * CRDs to install into a private control plane (default: the project's, from src/api/crds.ts).
   * The shared control plane of `npm test` already has the project's CRDs.
   */
  crds?: Manifests;
}

/**
 * Retries `check` (an assertion or any function that throws while the condition does not hold)
 * until it passes; rethrows its last error after the deadline. Default: 10 s, every 50 ms.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: Partial<Omit<PollOptions, "description">> & { description?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

const TEST_FIELD_MANAGER = "kubipam-test";
let clusterPromise: Promise<TestCluster> | undefined;

/**
 * The control-plane binaries for a test process: like `npm start`, except that the real envtest
 * index is never contacted unless KUBIPAM_ENVTEST_INDEX names it explicitly.
 */
export function resolveTestBinDir(): Promise<string> {
  return resolveBinDir({ ...process.env, KUBIPAM_ENVTEST_INDEX: process.env.KUBIPAM_ENVTEST_INDEX || "off" });
}

/** The control plane for this test process (shared with the run, or private). Memoized. */
export function useCluster(options: UseClusterOptions = {}): Promise<TestCluster> {
  clusterPromise ??= connect(options);
  return clusterPromise;
}

async function connect(options: UseClusterOptions): Promise<TestCluster> {
  const sharedKubeconfig = process.env.KUBIPAM_TEST_KUBECONFIG;
  if (sharedKubeconfig) {
    const binDir = process.env.KUBIPAM_BIN_DIR ?? "";
    let tmpDir = process.env.KUBIPAM_TEST_TMPDIR;
    if (!tmpDir) {
      const ownDir = mkdtempSync(join(tmpdir(), "kubipam-test-"));
      process.on("exit", () => rmSync(ownDir, { recursive: true, force: true }));
      tmpDir = ownDir;
    }
    const cluster = new Cluster(sharedKubeconfig, binDir, mkdtempSync(join(tmpDir, "p")));
    if (options.crds !== undefined) await cluster.installCrds(options.crds);
    return cluster;
  }
  const binDir = await resolveTestBinDir();
  const controlPlane = await LocalControlPlane.start({
    binDir,
    keepAlive: false, // the test process exits when its tests are done; the control plane goes with it
    log: (message) => process.stderr.write(`[harness] ${message}\n`),
  });
  const cluster = new Cluster(controlPlane.kubeconfigPath, binDir, controlPlane.dir);
  const crds = options.crds ?? (await loadProjectCrds());
  if (crds !== undefined) await cluster.installCrds(crds);
  return cluster;
}

function dnsLabel(prefix: string): string {
  const suffix = randomBytes(3).toString("hex");
  const base = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63 - suffix.length - 1)
    .replace(/-+$/, "");
  return `${base || "test"}-${suffix}`;
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs?: string[];
  nonResourceURLs?: string[];
}

interface Binding extends KubeObject {
  subjects?: { kind: string; name: string; namespace?: string; apiGroup?: string }[];
  roleRef?: { kind: string; name: string; apiGroup?: string };
}

class Cluster implements TestCluster {
  readonly kubeConfig: KubeConfig;
  readonly rest: RestClient;
  readonly server: string;

  constructor(
    readonly kubeconfigPath: string,
    readonly binDir: string,
    readonly tmpDir: string,
  ) {
    this.kubeConfig = loadKubeconfig(kubeconfigPath);
    this.rest = new RestClient(this.kubeConfig);
    this.server = this.kubeConfig.getCurrentCluster()?.server ?? "";
  }

  async createNamespace(prefix: string): Promise<string> {
    const name = dnsLabel(prefix);
    await this.rest.request("POST", "/api/v1/namespaces", {
      body: {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name, labels: { "kubipam.test/prefix": name } },
      },
    });
    return name;
  }

  installCrds(manifests: Manifests): Promise<KubeObject[]> {
    return installCrds(this.rest, manifests);
  }

  async applyManifests(manifests: Manifests, options: { namespace?: string } = {}): Promise<KubeObject[]> {
    const applied: KubeObject[] = [];
    for (const object of parseManifests(manifests)) {
      if (object.kind === "CustomResourceDefinition") {
        applied.push(...(await installCrds(this.rest, object)));
        continue;
      }
      applied.push(await this.rest.apply(object, TEST_FIELD_MANAGER, options.namespace));
    }
    return applied;
  }

  async serviceAccountKubeconfig(
    namespace: string,
    name: string,
    rbacManifests: Manifests,
    options: ServiceAccountOptions = {},
  ): Promise<string> {
    await this.rest.apply(
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } },
      TEST_FIELD_MANAGER,
    );
    let objects = parseManifests(rbacManifests);
    if (options.rebind) objects = objects.map((object) => rebind(object, namespace, name));
    const applied = await this.applyManifests(objects, { namespace });
    await this.#waitForBindings(applied, objects, namespace, name);

    const tokenRequest = await this.rest.request<{ status?: { token?: string } }>(
      "POST",
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`,
      {
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: { expirationSeconds: options.expirationSeconds ?? 86_400 },
        },
      },
    );
    const token = tokenRequest.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
    const path = join(this.tmpDir, `sa-${namespace}-${name}-${randomBytes(3).toString("hex")}.kubeconfig`);
    writeKubeconfig(path, {
      server: this.server,
      caPem: this.#caPem(),
      token,
      name: "kubipam-test",
      user: `${namespace}-${name}`,
      namespace,
    });
    return path;
  }

  #caPem(): string {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (cluster?.caData) return Buffer.from(cluster.caData, "base64").toString("utf8");
    if (cluster?.caFile) return readFileSync(cluster.caFile, "utf8");
    throw new Error(`${this.kubeconfigPath} has no certificate authority for its cluster`);
  }

  /**
   * The RBAC authorizer learns about new roles and bindings through its own watch, a moment after
   * they are stored. For every binding of this account, ask it (SubjectAccessReview) about one thing
   * the bound role grants until it says yes, so that tests never see a stale 403.
   */
  async #waitForBindings(
    applied: KubeObject[],
    given: KubeObject[],
    namespace: string,
    name: string,
  ): Promise<void> {
    const user = `system:serviceaccount:${namespace}:${name}`;
    const groups = ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"];
    for (const object of applied) {
      if (object.kind !== "RoleBinding" && object.kind !== "ClusterRoleBinding") continue;
      const binding = object as Binding;
      const boundHere = binding.subjects?.some(
        (s) =>
          s.kind === "ServiceAccount" &&
          s.name === name &&
          (s.namespace ?? binding.metadata.namespace) === namespace,
      );
      if (!boundHere || !binding.roleRef) continue;
      const roleRef = binding.roleRef;
      const bindingNamespace = object.kind === "RoleBinding" ? binding.metadata.namespace : undefined;
      const rules = await this.#rulesOf(roleRef.kind, roleRef.name, bindingNamespace, given);
      const rule = rules.find((r) => (r.verbs?.length ?? 0) > 0);
      if (!rule) continue;
      const verb = rule.verbs?.[0] ?? "get";
      const spec = rule.nonResourceURLs?.length
        ? { user, groups, nonResourceAttributes: { path: rule.nonResourceURLs[0], verb } }
        : {
            user,
            groups,
            resourceAttributes: {
              verb,
              group: rule.apiGroups?.[0] ?? "",
              resource: rule.resources?.[0]?.split("/")[0] ?? "",
              subresource: rule.resources?.[0]?.split("/")[1] ?? "",
              name: rule.resourceNames?.[0] ?? "",
              ...(bindingNamespace ? { namespace: bindingNamespace } : {}),
            },
          };
      await pollUntil(
        async () => {
          const review = await this.rest.request<{ status?: { allowed?: boolean } }>(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            { body: { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec } },
          );
          return review.status?.allowed ? true : undefined;
        },
        {
          timeoutMs: 30_000,
          intervalMs: 50,
          description: `RBAC binding ${binding.metadata.name} to take effect`,
        },
      );
    }
  }

  async #rulesOf(kind: string, roleName: string, namespace: string | undefined, given: KubeObject[]) {
    const local = given.find(
      (o) =>
        o.kind === kind &&
        o.metadata.name === roleName &&
        (kind === "ClusterRole" || (o.metadata.namespace ?? namespace) === namespace),
    );
    let role: unknown = local;
    if (!role) {
      const path =
        kind === "ClusterRole"
          ? `/apis/rbac.authorization.k8s.io/v1/clusterroles/${encodeURIComponent(roleName)}`
          : `/apis/rbac.authorization.k8s.io/v1/namespaces/${encodeURIComponent(namespace ?? "")}/roles/${encodeURIComponent(roleName)}`;
      try {
        role = await this.rest.request("GET", path);
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 404) return [];
        throw error;
      }
    }
    if (!isKubeObject(role) || !Array.isArray(role.rules)) return [];
    return role.rules as PolicyRule[];
  }
}

function rebind(object: KubeObject, namespace: string, name: string): KubeObject {
  const subjects = [{ kind: "ServiceAccount", name, namespace }];
  switch (object.kind) {
    case "Role":
      return { ...object, metadata: { ...object.metadata, namespace } };
    case "RoleBinding":
      return { ...object, metadata: { ...object.metadata, namespace }, subjects };
    case "ClusterRoleBinding":
      return {
        ...object,
        metadata: { ...object.metadata, name: `${object.metadata.name ?? "binding"}-${namespace}-${name}` },
        subjects,
      };
    default:
      return object;
  }
}
