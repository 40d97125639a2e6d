// Test harness: a real kube-apiserver + etcd for integration tests.
//
// `useCluster()` connects to the run's shared control plane (scripts/run-tests.ts sets
// KUBIPAM_TEST_KUBECONFIG) or, when a test file runs on its own, starts a private one for this
// process that stops when the process finishes (or dies). Each test file should work in its own
// namespace (`createNamespace`). Namespaces are never deleted: without kube-controller-manager they
// would stay Terminating, and the control plane is thrown away after the run anyway.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  installCrds,
  isManifest,
  LocalControlPlane,
  loadClusterApiCrds,
  loadKubeconfig,
  loadProjectCrds,
  type Manifest,
  parseManifests,
  ResourceDiscovery,
  resolveBinDir,
  writeKubeconfig,
} from "../../src/cli/control-plane/index.ts";
import type { ClusterAccess as KubeConfig } from "../../src/runtime/kube/cluster-access.ts";
import { CoreTypes, isNotFound, KubeClient } from "../../src/runtime/kube.ts";
import { type PollOptions, pollUntil } from "../../src/runtime/util.ts";
import { checkInvariants, type InvariantOptions } from "../../src/testing/invariants.ts";

export type { Manifest } from "../../src/cli/control-plane/index.ts";
export { loadKubeconfig, parseManifests } from "../../src/cli/control-plane/index.ts";
export { pollUntil } from "../../src/runtime/util.ts";

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
  /** The admin's access, loaded from `kubeconfigPath` only. */
  readonly kubeConfig: KubeConfig;
  /** Folder with etcd, kube-apiserver and (when built by the script) kubectl. */
  readonly binDir: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** Admin client (the runtime's KubeClient; `request`/`raw` for paths without a typed operation). */
  readonly rest: KubeClient;
  /** A folder for this process's files; removed with the control plane or at exit. */
  readonly tmpDir: string;
  /** Creates a namespace `<prefix>-<random>` and returns its name. */
  createNamespace(prefix: string): Promise<string>;
  /**
   * Server-side applies the objects in order (field manager "kubipam-test", forced). Namespaced
   * objects without a namespace go to `options.namespace`. CRDs among them are waited for until
   * Established and served.
   */
  applyManifests(manifests: Manifests, options?: { namespace?: string }): Promise<Manifest[]>;
  /** Applies CRDs and waits until they are Established and served. */
  installCrds(manifests: Manifests): Promise<Manifest[]>;
  /** The URL path of an object of any served kind (or of its collection when it has no name). */
  pathFor(object: Manifest, defaultNamespace?: string): Promise<string>;
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
  /**
   * A control plane of this test process's own even under `npm test` (e.g. to start a controller
   * before some CRDs exist); it stops when the process ends.
   */
  private?: boolean;
}

/**
 * Retries `check` (an assertion or any function that throws while the condition does not hold)
 * until it passes and returns its value; after the deadline rethrows its last error (so a failing
 * assertion shows its own diff). Default: 10 s, every 50 ms. The harness's form of `pollUntil`.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: Partial<PollOptions> = {},
): Promise<T> {
  let lastError: unknown;
  try {
    const { value } = await pollUntil(
      async () => {
        try {
          return { value: await check() };
        } catch (error) {
          lastError = error;
          throw error;
        }
      },
      {
        timeoutMs: options.timeoutMs ?? 10_000,
        intervalMs: options.intervalMs ?? 50,
        description: options.description ?? "a condition",
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    return value;
  } catch (error) {
    // On timeout pollUntil names the last error as its cause: throw that one itself.
    throw error instanceof Error && error.cause !== undefined && error.cause === lastError
      ? lastError
      : error;
  }
}

/** Waits (20 s by default) until the invariant checker finds no problem; fails with the last list. */
export async function invariantsHold(
  client: KubeClient,
  options: InvariantOptions,
  timeoutMs = 20_000,
): Promise<void> {
  await eventually(async () => assert.deepEqual(await checkInvariants(client, options), []), {
    timeoutMs,
    intervalMs: 100,
  });
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

/**
 * Installs the real Cluster API CRDs (IPAddressClaim, IPAddress, Cluster; generated by
 * scripts/cluster-api-crds.sh from Cluster API's Go types, cached) and waits until they are served.
 */
export async function installClusterApiCrds(cluster: TestCluster): Promise<Manifest[]> {
  return cluster.installCrds(await loadClusterApiCrds());
}

/** The control plane for this test process (shared with the run, or private). Memoized. */
export function useCluster(options: UseClusterOptions = {}): Promise<TestCluster> {
  clusterPromise ??= connect(options);
  return clusterPromise;
}

async function connect(options: UseClusterOptions): Promise<TestCluster> {
  const sharedKubeconfig = options.private ? undefined : process.env.KUBIPAM_TEST_KUBECONFIG;
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

interface Binding extends Manifest {
  subjects?: { kind: string; name: string; namespace?: string; apiGroup?: string }[];
  roleRef?: { kind: string; name: string; apiGroup?: string };
}

class Cluster implements TestCluster {
  readonly kubeConfig: KubeConfig;
  readonly rest: KubeClient;
  readonly server: string;
  readonly #discovery: ResourceDiscovery;

  constructor(
    readonly kubeconfigPath: string,
    readonly binDir: string,
    readonly tmpDir: string,
  ) {
    this.kubeConfig = loadKubeconfig(kubeconfigPath);
    this.rest = new KubeClient(this.kubeConfig, { userAgent: "kubipam-test" });
    this.#discovery = new ResourceDiscovery(this.rest);
    this.server = this.kubeConfig.getCurrentCluster()?.server ?? "";
  }

  async createNamespace(prefix: string): Promise<string> {
    const name = dnsLabel(prefix);
    await this.rest.create(CoreTypes.namespace, {
      metadata: { name, labels: { "kubipam.test/prefix": name } },
    });
    return name;
  }

  installCrds(manifests: Manifests): Promise<Manifest[]> {
    return installCrds(this.rest, manifests);
  }

  pathFor(object: Manifest, defaultNamespace?: string): Promise<string> {
    return this.#discovery.pathFor(object, defaultNamespace);
  }

  async applyManifests(manifests: Manifests, options: { namespace?: string } = {}): Promise<Manifest[]> {
    const applied: Manifest[] = [];
    for (const object of parseManifests(manifests)) {
      if (object.kind === "CustomResourceDefinition") {
        applied.push(...(await installCrds(this.rest, object)));
        continue;
      }
      applied.push(await this.#discovery.apply(object, TEST_FIELD_MANAGER, options.namespace));
    }
    return applied;
  }

  async serviceAccountKubeconfig(
    namespace: string,
    name: string,
    rbacManifests: Manifests,
    options: ServiceAccountOptions = {},
  ): Promise<string> {
    await this.#discovery.apply(
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
    // The control plane writes one self-contained kubeconfig: its cluster carries the CA inline.
    const doc = parseYaml(readFileSync(this.kubeconfigPath, "utf8")) as {
      clusters?: { cluster?: { "certificate-authority-data"?: string } }[];
    };
    const data = doc.clusters?.[0]?.cluster?.["certificate-authority-data"];
    if (data) return Buffer.from(data, "base64").toString("utf8");
    throw new Error(`${this.kubeconfigPath} has no certificate authority for its cluster`);
  }

  /**
   * The RBAC authorizer learns about new roles and bindings through its own watch, a moment after
   * they are stored. For every binding of this account, ask it (SubjectAccessReview) about one thing
   * the bound role grants until it says yes, so that tests never see a stale 403.
   */
  async #waitForBindings(
    applied: Manifest[],
    given: Manifest[],
    namespace: string,
    name: string,
  ): Promise<void> {
    const user = `system:serviceaccount:${namespace}:${name}`;
    const groups = ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"];
    for (const object of applied) {
      if (object.kind !== "RoleBinding" && object.kind !== "ClusterRoleBinding") continue;
      const binding = object as Binding;
      const roleRef = binding.roleRef;
      if (!roleRef || !bindsAccount(binding, namespace, name)) continue;
      const bindingNamespace = object.kind === "RoleBinding" ? binding.metadata.namespace : undefined;
      const rules = await this.#rulesOf(roleRef.kind, roleRef.name, bindingNamespace, given);
      const rule = rules.find((r) => (r.verbs?.length ?? 0) > 0);
      if (!rule) continue;
      const spec = { user, groups, ...reviewAttributes(rule, bindingNamespace) };
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

  async #rulesOf(kind: string, roleName: string, namespace: string | undefined, given: Manifest[]) {
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
        if (isNotFound(error)) return [];
        throw error;
      }
    }
    if (!isManifest(role) || !Array.isArray(role.rules)) return [];
    return role.rules as PolicyRule[];
  }
}

/** Whether the binding names ServiceAccount `namespace/name` among its subjects. */
function bindsAccount(binding: Binding, namespace: string, name: string): boolean {
  return (
    binding.subjects?.some(
      (s) =>
        s.kind === "ServiceAccount" &&
        s.name === name &&
        (s.namespace ?? binding.metadata.namespace) === namespace,
    ) ?? false
  );
}

/** The SubjectAccessReview attributes of the first thing `rule` grants. */
function reviewAttributes(rule: PolicyRule, namespace: string | undefined): object {
  const verb = rule.verbs?.[0] ?? "get";
  if (rule.nonResourceURLs?.length) return { nonResourceAttributes: { path: rule.nonResourceURLs[0], verb } };
  const [resource, subresource] = (rule.resources?.[0] ?? "").split("/");
  return {
    resourceAttributes: {
      verb,
      group: rule.apiGroups?.[0] ?? "",
      resource: resource ?? "",
      subresource: subresource ?? "",
      name: rule.resourceNames?.[0] ?? "",
      ...(namespace ? { namespace } : {}),
    },
  };
}

function rebind(object: Manifest, namespace: string, name: string): Manifest {
  const subjects = [{ kind: "ServiceAccount", name, namespace }];
  // Grants in kube-system (the allocation fence's Lease) stay there, bound to this account.
  if (object.metadata.namespace === "kube-system") {
    if (object.kind !== "RoleBinding") return object;
    const bindingName = `${object.metadata.name ?? "binding"}-${namespace}-${name}`;
    return { ...object, metadata: { ...object.metadata, name: bindingName }, subjects };
  }
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
