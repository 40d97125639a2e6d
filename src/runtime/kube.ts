// The Kubernetes client of the runtime, one import for its parts (src/runtime/kube/):
//   meta.ts            object model, keys, built-in resource types
//   errors.ts          ApiError and its predicates, RequestTimeoutError
//   transport.ts       HTTP(S) with pooled connections, credentials from the kubeconfig; request hooks
//   watch-decoding.ts  newline-delimited JSON of watch streams
//   kubeconfig.ts      loading a kubeconfig
//   options.ts         options of the client and its operations
//   requests.ts        resource paths and queries; the pipeline of hooks, JSON decoding, 429 retries
//   client.ts          KubeClient: typed operations, watches, raw requests

export { KubeClient } from "./kube/client.ts";
export { type ClusterAccess, LightKubeConfig } from "./kube/cluster-access.ts";
export {
  ApiError,
  isAbortError,
  isAlreadyExists,
  isApiError,
  isConflict,
  isForbidden,
  isGone,
  isNotFound,
  isTimeout,
  isTooManyRequests,
  isUnauthorized,
  isUnprocessable,
  RequestTimeoutError,
} from "./kube/errors.ts";
export { loadKubeConfig } from "./kube/kubeconfig.ts";
export {
  apiVersionOf,
  CoreTypes,
  type KubeObject,
  type ObjectList,
  type ObjectMeta,
  type OwnerReference,
  objectKey,
  type ResourceType,
  type Status,
  type StatusCause,
  type StatusDetails,
  splitKey,
  type WatchEvent,
  type WatchEventType,
} from "./kube/meta.ts";
export type {
  DeleteOptions,
  JsonPatchOp,
  KubeClientOptions,
  ListAllOptions,
  ListOptions,
  NamespacedOptions,
  PatchOptions,
  PatchType,
  RequestOptions,
  WatchOptions,
  WriteOptions,
} from "./kube/options.ts";
export type {
  HttpMethod,
  KubeRequest,
  KubeResponse,
  RequestHandler,
  RequestHook,
} from "./kube/transport.ts";
export { LineDecoder, parseWatchEvent } from "./kube/watch-decoding.ts";
