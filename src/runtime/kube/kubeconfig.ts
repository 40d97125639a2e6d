// Loading a kubeconfig: kubipam's own reader for in-cluster config and token or client-certificate
// users (cluster-access.ts), client-node's for everything else (exec plugins, auth providers, several
// files merged), imported only then.

import { type ClusterAccess, LightKubeConfig } from "./cluster-access.ts";

export type { ClusterAccess } from "./cluster-access.ts";

/** Loads a kubeconfig file, or the default chain (KUBECONFIG, ~/.kube/config, in-cluster). */
export async function loadKubeConfig(path?: string, context?: string): Promise<ClusterAccess> {
  const light = LightKubeConfig.load(path, context);
  if (light) return light;
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  return kc;
}
