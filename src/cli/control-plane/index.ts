export { binariesScript, resolveBinDir } from "./binaries.ts";
export { FIELD_MANAGER, installCrds, loadProjectCrds } from "./crds.ts";
export { compactEtcd, etcdRevision } from "./etcd.ts";
export { type KubeconfigSpec, kubeconfigYaml, loadKubeconfig, writeKubeconfig } from "./kubeconfig.ts";
export { LocalControlPlane, type LocalControlPlaneOptions } from "./local-control-plane.ts";
export { type PollOptions, pollUntil } from "./poll.ts";
export { freePort, freePorts } from "./ports.ts";
export {
  type ApiResource,
  isKubeObject,
  KubeApiError,
  type KubeObject,
  parseManifests,
  type RawResponse,
  type RequestOptions,
  RestClient,
} from "./rest.ts";
