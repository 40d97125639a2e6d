export {
  binariesScript,
  envtestIndexUrl,
  envtestTimeoutMs,
  findPrebuiltBinaries,
  type LocateOptions,
  resolveBinDir,
} from "./binaries.ts";
export { FIELD_MANAGER, installCrds, loadProjectCrds } from "./crds.ts";
export { DownloadError, downloadEnvtest } from "./envtest-download.ts";
export {
  DEFAULT_ENVTEST_INDEX,
  goPlatform,
  pickArchive,
  TESTED_KUBERNETES_MINOR,
  wantedVersion,
} from "./envtest-index.ts";
export { type KubeconfigSpec, kubeconfigYaml, loadKubeconfig, writeKubeconfig } from "./kubeconfig.ts";
export {
  type BinarySource,
  cacheRoot,
  type FoundBinaries,
  hasControlPlaneBinaries,
  setupEnvtestStore,
} from "./local-binaries.ts";
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
