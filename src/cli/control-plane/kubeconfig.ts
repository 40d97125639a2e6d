import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import { type ClusterAccess, LightKubeConfig } from "../../runtime/kube/cluster-access.ts";

export interface KubeconfigSpec {
  server: string;
  /** PEM bundle that verifies the server's certificate. */
  caPem: string;
  token: string;
  /** Names the cluster, user and context entries (never the user's own ones: this file stands alone). */
  name: string;
  user: string;
  namespace?: string;
}

export function kubeconfigYaml(spec: KubeconfigSpec): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: spec.name,
        cluster: {
          server: spec.server,
          "certificate-authority-data": Buffer.from(spec.caPem).toString("base64"),
        },
      },
    ],
    users: [{ name: spec.user, user: { token: spec.token } }],
    contexts: [
      {
        name: spec.name,
        context: {
          cluster: spec.name,
          user: spec.user,
          ...(spec.namespace ? { namespace: spec.namespace } : {}),
        },
      },
    ],
    "current-context": spec.name,
    preferences: {},
  });
}

/** Writes a self-contained kubeconfig file (mode 0600). */
export function writeKubeconfig(path: string, spec: KubeconfigSpec): void {
  writeFileSync(path, kubeconfigYaml(spec), { mode: 0o600 });
}

/** Loads exactly this file (token and CA, read by kubipam itself): never $KUBECONFIG or ~/.kube/config. */
export function loadKubeconfig(path: string): ClusterAccess {
  const access = LightKubeConfig.load(path);
  if (!access) throw new Error(`${path}: not a token or certificate kubeconfig with a current context`);
  return access;
}
