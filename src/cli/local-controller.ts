// What `kubipam start` runs against its local control plane: the controller, plus an example range
// and request so that a first-time user sees an allocation at once.

import { API_VERSION, type IPAMRequest, ipamRangeResource, ipamRequestResource } from "../api/types.ts";
import { isAlreadyExists, KubeClient, loadKubeConfig } from "../runtime/kube.ts";
import { pollUntil } from "../runtime/util.ts";
import { defaultControllerFlags, runController } from "./controller.ts";

async function applyExample(kubeconfigPath: string, signal: AbortSignal): Promise<string> {
  const client = new KubeClient(await loadKubeConfig(kubeconfigPath));
  try {
    const objects = [
      {
        type: ipamRangeResource,
        body: {
          apiVersion: API_VERSION,
          kind: "IPAMRange",
          metadata: { name: "example", namespace: "default" },
          spec: { chunkSize: 24, ranges: ["192.168.0.0/16"] },
        },
      },
      {
        type: ipamRequestResource,
        body: {
          apiVersion: API_VERSION,
          kind: "IPAMRequest",
          metadata: { name: "example", namespace: "default" },
          spec: { ipam: { name: "example" }, description: "created by kubipam start" },
        },
      },
    ];
    for (const { type, body } of objects) {
      try {
        await client.create(type, body);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    }
    return await pollUntil(
      async () => {
        const request = await client.get<IPAMRequest>(ipamRequestResource, "example", {
          namespace: "default",
        });
        return request.status?.state === "Ready" ? request.status.cidr : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, description: "the example request to become Ready", signal },
    );
  } finally {
    client.close();
  }
}

export async function runLocalController(kubeconfigPath: string, signal: AbortSignal): Promise<void> {
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
  applyExample(kubeconfigPath, signal).then(
    (cidr) =>
      process.stdout.write(
        [
          "",
          `Example: IPAMRange default/example (192.168.0.0/16, chunkSize 24) gave IPAMRequest default/example ${cidr}.`,
          "Next, with KUBECONFIG exported as above:",
          "  kubectl get iprange,ipreq -A",
          "  kubectl ipam usage -A            (or: npx tsx src/cli/kubectl-ipam.ts usage -A)",
          "  kubectl explain ipamrequest.spec",
          "",
        ].join("\n"),
      ),
    (err: unknown) => process.stderr.write(`kubipam: example failed: ${String(err)}\n`),
  );
  await controller;
}
