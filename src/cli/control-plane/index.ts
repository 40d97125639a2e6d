export { binariesScript, resolveBinDir } from "./binaries.ts";
export { FIELD_MANAGER, installCrds, loadProjectCrds } from "./crds.ts";
export { ResourceDiscovery } from "./discovery.ts";
export { compactEtcd, etcdRevision } from "./etcd.ts";
export { type KubeconfigSpec, kubeconfigYaml, loadKubeconfig, writeKubeconfig } from "./kubeconfig.ts";
export { LocalControlPlane, type LocalControlPlaneOptions } from "./local-control-plane.ts";
export { isManifest, type Manifest, parseManifests } from "./manifests.ts";
export { freePort, freePorts } from "./ports.ts";
