// What `kubipam start` runs against its local control plane: the controller, plus an example range
// and request (and with --with-cluster-api a Cluster API claim on the same range) so that a
// first-time user sees an allocation at once.

import {
  CAPI_IPAM_API_VERSION,
  type IPAddress,
  ipAddressClaimResource,
  ipAddressResource,
} from "../api/cluster-api.ts";
import { API_VERSION, type IPAMRequest, ipamRangeResource, ipamRequestResource } from "../api/types.ts";
import { isAlreadyExists, isNotFound, KubeClient, type KubeObject, loadKubeConfig } from "../runtime/kube.ts";
import { pollUntil } from "../runtime/util.ts";
import { defaultControllerFlags, runController } from "./controller.ts";
import type { StartExtras } from "./start.ts";

const exampleRange = {
  apiVersion: API_VERSION,
  kind: "IPAMRange",
  metadata: { name: "example", namespace: "default" },
  spec: { chunkSize: 24, ranges: ["192.168.0.0/16"] },
};
const exampleRequest = {
  apiVersion: API_VERSION,
  kind: "IPAMRequest",
  metadata: { name: "example", namespace: "default" },
  spec: { ipam: { name: "example" }, description: "created by kubipam start" },
};
const exampleClaim = {
  apiVersion: CAPI_IPAM_API_VERSION,
  kind: "IPAddressClaim",
  metadata: { name: "example", namespace: "default" },
  spec: { poolRef: { apiGroup: "ipam.mandelsoft.org", kind: "IPAMRange", name: "example" } },
};

async function createOnce(
  client: KubeClient,
  type: typeof ipamRangeResource | typeof ipamRequestResource | typeof ipAddressClaimResource,
  body: KubeObject,
): Promise<void> {
  try {
    await client.create(type, body);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

async function applyExample(
  kubeconfigPath: string,
  signal: AbortSignal,
  extras: StartExtras,
): Promise<string[]> {
  const client = new KubeClient(await loadKubeConfig(kubeconfigPath));
  const poll = { timeoutMs: 60_000, intervalMs: 200, signal };
  try {
    await createOnce(client, ipamRangeResource, exampleRange);
    await createOnce(client, ipamRequestResource, exampleRequest);
    if (extras.withClusterApi) await createOnce(client, ipAddressClaimResource, exampleClaim);
    const cidr = await pollUntil(
      async () => {
        const request = await client.get<IPAMRequest>(ipamRequestResource, "example", {
          namespace: "default",
        });
        return request.status?.state === "Ready" ? request.status.cidr : undefined;
      },
      { ...poll, description: "the example request to become Ready" },
    );
    const lines = [
      `Example: IPAMRange default/example (192.168.0.0/16, chunkSize 24) gave IPAMRequest default/example ${cidr}.`,
    ];
    if (extras.withClusterApi) {
      const address = await pollUntil(
        async () => {
          try {
            return (await client.get<IPAddress>(ipAddressResource, "example", { namespace: "default" })).spec;
          } catch (err) {
            if (isNotFound(err)) return undefined;
            throw err;
          }
        },
        { ...poll, description: "the example claim's IPAddress" },
      );
      lines.push(
        `Cluster API: IPAddressClaim default/example got IPAddress default/example ${address.address}/${address.prefix} from the same range.`,
      );
    }
    return lines;
  } finally {
    client.close();
  }
}

export async function runLocalController(
  kubeconfigPath: string,
  signal: AbortSignal,
  extras: StartExtras,
): Promise<void> {
  const controller = runController(
    {
      ...defaultControllerFlags,
      kubeconfig: kubeconfigPath,
      // Local runs share the machine with other programs: no fixed ports.
      metricsBindAddress: "0",
      healthProbeBindAddress: "0",
      logFormat: "text",
      logLevel: "warn",
    },
    signal,
  );
  applyExample(kubeconfigPath, signal, extras).then(
    (lines) =>
      process.stdout.write(
        [
          "",
          ...lines,
          "Next, with KUBECONFIG exported as above:",
          extras.withClusterApi
            ? "  kubectl get iprange,ipreq,ipaddressclaims,ipaddresses -A"
            : "  kubectl get iprange,ipreq -A",
          "  kubectl ipam usage -A            (or: npx tsx src/cli/kubectl-ipam.ts usage -A)",
          "  kubectl ipam ui -A               (the address map in your browser)",
          "  kubectl explain ipamrequest.spec",
          "",
        ].join("\n"),
      ),
    (err: unknown) => process.stderr.write(`kubipam: example failed: ${String(err)}\n`),
  );
  await controller;
}
