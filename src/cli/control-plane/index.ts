export {
  binariesScript,
  envtestIndexUrl,
  envtestTimeoutMs,
  findPrebuiltBinaries,
  type LocateOptions,
  resolveBinDir,
} from "./binaries.ts";
export {
  CLUSTER_API_CRD_FILES,
  clusterApiCrdsScript,
  loadClusterApiCrds,
  resolveClusterApiCrdsDir,
} from "./cluster-api-crds.ts";
export { FIELD_MANAGER, installCrds, loadProjectCrds } from "./crds.ts";
export { ResourceDiscovery } from "./discovery.ts";
export { DownloadError, downloadEnvtest } from "./envtest-download.ts";
export {
  DEFAULT_ENVTEST_INDEX,
  goPlatform,
  pickArchive,
  TESTED_KUBERNETES_MINOR,
  wantedVersion,
} from "./envtest-index.ts";
export { compactEtcd, etcdRevision } from "./etcd.ts";
export { type KubeconfigSpec, kubeconfigYaml, loadKubeconfig, writeKubeconfig } from "./kubeconfig.ts";
export {
  type BinarySource,
  cacheRoot,
  type FoundBinaries,
  hasControlPlaneBinaries,
  setupEnvtestStore,
} from "./local-binaries.ts";
export { LocalControlPlane, type LocalControlPlaneOptions } from "./local-control-plane.ts";
export { isManifest, type Manifest, parseManifests } from "./manifests.ts";
export { freePort, freePorts } from "./ports.ts";
