// Every manifest in deploy/ and the Helm chart rendered with its default values is accepted by the
// real API server (server-side dry run, strict field validation), the controller's pod passes the
// "restricted" Pod Security Standard, and the chart grants exactly what the plain RBAC grants.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { ROOT, renderChart } from "../../scripts/render-manifests.ts";
import { ApiError } from "../../src/runtime/kube.ts";
import { type Manifest, parseManifests, type TestCluster, useCluster } from "../harness/index.ts";

const FIELD_MANAGER = "kubipam-deploy-test";

function deployFile(name: string): string {
  return readFileSync(join(ROOT, "deploy", name), "utf8");
}

/** The plain manifests, in the order kustomization.yaml lists them. */
function plainManifests(): Manifest[] {
  const kustomization = parse(deployFile("kustomization.yaml")) as { resources: string[] };
  return kustomization.resources.flatMap((file) => parseManifests(deployFile(file)));
}

/** Server-side apply with dryRun=All and strict field validation; returns what the server would store. */
async function dryRunApply(cluster: TestCluster, object: Manifest, namespace?: string): Promise<Manifest> {
  const body =
    namespace && object.metadata.namespace === undefined
      ? { ...object, metadata: { ...object.metadata, namespace } }
      : object;
  const path = await cluster.pathFor(body, namespace);
  try {
    return await cluster.rest.request<Manifest>("PATCH", path, {
      body,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: FIELD_MANAGER, force: true, dryRun: "All", fieldValidation: "Strict" },
    });
  } catch (err) {
    const detail = err instanceof ApiError ? err.message : String(err);
    throw new Error(`${object.kind} ${object.metadata.name ?? ""} was refused: ${detail}`);
  }
}

function kindsOf(objects: readonly Manifest[]): string[] {
  return objects.map((o) => `${o.kind}/${o.metadata.name ?? ""}`);
}

interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec: {
    hostNetwork?: boolean;
    securityContext?: Record<string, unknown>;
    containers: {
      name: string;
      args?: string[];
      ports?: { name: string; containerPort: number }[];
      resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
      livenessProbe?: { httpGet?: { path: string; port: string | number } };
      readinessProbe?: { httpGet?: { path: string; port: string | number } };
      securityContext?: Record<string, unknown>;
    }[];
  };
}

function deploymentOf(objects: readonly Manifest[]): { replicas: number; template: PodTemplate } {
  const deployment = objects.find((o) => o.kind === "Deployment");
  assert.ok(deployment, "a Deployment");
  return deployment.spec as { replicas: number; template: PodTemplate };
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Rules as a sorted set of `group/resource:verb` grants. */
function grants(objects: readonly Manifest[], kind: "ClusterRole" | "Role"): string[] {
  const out = new Set<string>();
  for (const o of objects.filter((x) => x.kind === kind)) {
    for (const rule of (o.rules as Rule[]) ?? []) {
      for (const g of rule.apiGroups)
        for (const r of rule.resources) for (const v of rule.verbs) out.add(`${g}/${r}:${v}`);
    }
  }
  return [...out].sort();
}

function assertHardenedController(spec: { replicas: number; template: PodTemplate }): void {
  assert.equal(spec.replicas, 2);
  const pod = spec.template.spec;
  assert.notEqual(pod.hostNetwork, true);
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.deepEqual(pod.securityContext?.seccompProfile, { type: "RuntimeDefault" });
  const [container] = pod.containers;
  assert.ok(container);
  assert.ok(container.args?.includes("--leader-elect"));
  assert.ok(container.args?.includes("--leader-election-namespace=$(POD_NAMESPACE)"));
  assert.ok(container.args?.includes("--metrics-bind-address=:8080"));
  assert.ok(container.args?.includes("--health-probe-bind-address=:8081"));
  // Records of ClusterIPAMRanges in the fence's namespace, as every kubipam controller of a cluster has it.
  assert.ok(container.args?.includes("--cluster-allocation-namespace=kube-system"));
  assert.deepEqual(
    container.ports?.map((p) => [p.name, p.containerPort]),
    [
      ["metrics", 8080],
      ["health", 8081],
    ],
  );
  assert.deepEqual(container.livenessProbe?.httpGet, { path: "/healthz", port: "health" });
  assert.deepEqual(container.readinessProbe?.httpGet, { path: "/readyz", port: "health" });
  assert.ok(container.resources?.requests?.cpu && container.resources.requests.memory);
  assert.ok(container.resources?.limits?.memory);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
  assert.deepEqual(container.securityContext?.capabilities, { drop: ["ALL"] });
}

describe("deploy: manifests accepted by the API server", { concurrency: false }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await useCluster();
    // The CRDs for real (a no-op when the run has installed them already), then the namespace, so that
    // namespaced objects can be dry-run into it.
    await cluster.installCrds(deployFile("crds.yaml"));
    await cluster.applyManifests(deployFile("namespace.yaml"));
  });

  it("kustomization resources: every object (server-side dry run)", async () => {
    const objects = plainManifests();
    assert.deepEqual(kindsOf(objects), [
      "CustomResourceDefinition/ipamranges.ipam.mandelsoft.org",
      "CustomResourceDefinition/clusteripamranges.ipam.mandelsoft.org",
      "CustomResourceDefinition/ipamrequests.ipam.mandelsoft.org",
      "CustomResourceDefinition/ipamallocations.ipam.mandelsoft.org",
      "Namespace/kubipam-system",
      "ServiceAccount/kubipam-controller",
      "ClusterRole/kubipam-controller",
      "ClusterRoleBinding/kubipam-controller",
      "Role/kubipam-leader-election",
      "RoleBinding/kubipam-leader-election",
      "Role/kubipam-allocation-fence",
      "RoleBinding/kubipam-allocation-fence",
      "Deployment/kubipam-controller",
      "Service/kubipam-controller-metrics",
    ]);
    for (const object of objects) {
      const stored = await dryRunApply(cluster, object);
      assert.equal(stored.kind, object.kind);
      assert.equal(stored.metadata.name, object.metadata.name);
    }
    assertHardenedController(deploymentOf(objects));

    // Control: server-side apply checks fields against the schema, so a misspelt field would not pass.
    const deployment = objects.find((o) => o.kind === "Deployment");
    assert.ok(deployment);
    const typo = { ...deployment, spec: { ...(deployment.spec as object), replica: 2 } };
    await assert.rejects(dryRunApply(cluster, typo), /\.spec\.replica: field not declared in schema/);
  });

  it("the Helm chart with default values: every object (server-side dry run)", async () => {
    const namespace = await cluster.createNamespace("deploy-chart");
    const objects = parseManifests(renderChart({ namespace }));
    assert.deepEqual(
      kindsOf(objects)
        .map((k) => k.split("/")[0])
        .sort(),
      [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "Role",
        "Role",
        "RoleBinding",
        "RoleBinding",
        "Service",
        "ServiceAccount",
      ],
    );
    for (const object of objects) {
      const stored = await dryRunApply(cluster, object, namespace);
      assert.equal(stored.kind, object.kind);
      if (object.kind !== "CustomResourceDefinition" && !object.kind.startsWith("Cluster")) {
        // The allocation fence's grant lives where the fence does (kube-system), whatever the release.
        const fence = object.metadata.name?.endsWith("-allocation-fence");
        assert.equal(stored.metadata.namespace, fence ? "kube-system" : namespace);
      }
    }
    assertHardenedController(deploymentOf(objects));
  });

  it("the Helm chart with the switches off and scheduling values set is still accepted", async () => {
    const namespace = await cluster.createNamespace("deploy-chart-values");
    const objects = parseManifests(
      renderChart({
        namespace,
        releaseName: "ipam",
        includeCrds: false,
        set: [
          "metrics.enabled=false",
          "leaderElection.enabled=false",
          "replicas=1",
          "logLevel=debug",
          "nodeSelector.kubernetes\\.io/os=linux",
          "tolerations[0].key=dedicated,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule",
          "image.repository=registry.example/kubipam,image.tag=1.2.3",
        ],
      }),
    );
    assert.deepEqual(kindsOf(objects).sort(), [
      "ClusterRole/ipam-kubipam-controller",
      "ClusterRoleBinding/ipam-kubipam-controller",
      "Deployment/ipam-kubipam-controller",
      // The allocation fence is needed with or without leader election.
      "Role/ipam-kubipam-allocation-fence",
      "RoleBinding/ipam-kubipam-allocation-fence",
      "ServiceAccount/kubipam-controller",
    ]);
    for (const object of objects) await dryRunApply(cluster, object, namespace);
    const pod = deploymentOf(objects).template.spec as PodTemplate["spec"] & {
      nodeSelector?: Record<string, string>;
      tolerations?: unknown[];
      containers: { image?: string }[];
    };
    const args = pod.containers[0]?.args ?? [];
    assert.ok(args.includes("--metrics-bind-address=0"));
    assert.ok(args.includes("--log-level=debug"));
    assert.ok(!args.includes("--leader-elect"));
    assert.deepEqual(pod.nodeSelector, { "kubernetes.io/os": "linux" });
    assert.deepEqual(pod.tolerations, [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }]);
    assert.equal(pod.containers[0]?.image, "registry.example/kubipam:1.2.3");
  });

  it("the chart grants exactly what the plain RBAC grants", async () => {
    const plain = plainManifests();
    const chart = parseManifests(renderChart());
    assert.deepEqual(grants(chart, "ClusterRole"), grants(plain, "ClusterRole"));
    assert.deepEqual(grants(chart, "Role"), grants(plain, "Role"));
    assert.deepEqual(grants(plain, "Role"), [
      "coordination.k8s.io/leases:create",
      "coordination.k8s.io/leases:get",
      "coordination.k8s.io/leases:update",
    ]);
    // No wildcard anywhere.
    for (const g of [...grants(plain, "ClusterRole"), ...grants(chart, "ClusterRole")]) {
      assert.doesNotMatch(g, /\*/);
    }
  });

  it("the controller's pod passes the restricted Pod Security Standard (and a weaker one would not)", async () => {
    const namespace = await cluster.createNamespace("deploy-psa");
    await cluster.rest.request("PATCH", `/api/v1/namespaces/${namespace}`, {
      body: { metadata: { labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
      contentType: "application/merge-patch+json",
    });
    const template = deploymentOf(plainManifests()).template;
    const pod = (spec: PodTemplate["spec"]): Manifest => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "kubipam-controller-psa", namespace },
      spec,
    });
    const accepted = await dryRunApply(cluster, pod(template.spec));
    assert.equal(accepted.kind, "Pod");

    // Control: the same pod without the container's hardening is refused, so the check above means something.
    const weakened = structuredClone(template.spec);
    for (const c of weakened.containers) delete c.securityContext;
    await assert.rejects(dryRunApply(cluster, pod(weakened)), /violates PodSecurity "restricted/);
  });
});
