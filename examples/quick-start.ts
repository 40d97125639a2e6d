// The README's example: a /24 for "cluster-7" from the IPAMRange "pods", with the kubeconfig kubectl
// would use. Run: npx tsx examples/quick-start.ts <namespace>

import { fileURLToPath } from "node:url";
import { requestAddress } from "kubipam/client";

export async function quickStart(namespace: string): Promise<string> {
  const { cidr } = await requestAddress({ namespace, name: "cluster-7", range: { name: "pods" }, size: 24 });
  return cidr;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await quickStart(process.argv[2] ?? "default"));
}
