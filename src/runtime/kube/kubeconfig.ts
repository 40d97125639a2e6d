// Loading a kubeconfig (client-node's loader: files, the default chain, in-cluster).

import type { KubeConfig } from "@kubernetes/client-node";

/**
 * Loads a kubeconfig file, or the default chain (KUBECONFIG, ~/.kube/config, in-cluster). client-node is
 * imported lazily: it is slow to load and most of the runtime needs only its types.
 */
export async function loadKubeConfig(path?: string, context?: string): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  return kc;
}
