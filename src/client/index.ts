/**
 * `kubipam/client`: ask kubipam for addresses from a program.
 *
 * ```ts
 * import { requestAddress } from "kubipam/client";
 * const { cidr } = await requestAddress({ namespace: "net", name: "cluster-7", range: { name: "pods" }, size: 24 });
 * ```
 *
 * Built on the project's own Kubernetes client (`KubeClient`, re-exported here with `connect`).
 */

export {
  ApiError,
  isConflict,
  isNotFound,
  KubeClient,
  type KubeObject,
  type OwnerReference,
  type ResourceType,
} from "../runtime/kube.ts";
export { type ConnectionOptions, type ConnectOptions, connect } from "./connection.ts";
export {
  AddressRequestError,
  type AddressRequestErrorCode,
  isAddressRequestError,
} from "./errors.ts";
export { ownerReferenceTo } from "./owner.ts";
export { clusterIpamRangeResource, type GetRangeOptions, getRange, type RangeInfo } from "./ranges.ts";
export {
  type AddressResult,
  DEFAULT_TIMEOUT_MS,
  type FailureOptions,
  type ReleaseAddressOptions,
  type RequestAddressOptions,
  releaseAddress,
  requestAddress,
  type WaitOptions,
} from "./requests.ts";
export {
  type AddressSpec,
  type RangeKind,
  type RangeRef,
  type RangeUsage,
  rangeUsage,
  type SizeOrRequest,
} from "./spec.ts";
export {
  type ObjectEvent,
  type WatchObjectsOptions,
  watchObjects,
  watchRanges,
  watchRequests,
} from "./watch.ts";
