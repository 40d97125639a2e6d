export { type AddressKey, type Family, formatAddress, parseAddress, widthOf } from "./address.ts";
export {
  Allocator,
  type AllocatorOptions,
  type RebuildOptions,
  type RebuildResult,
  type Rejection,
  type Usage,
} from "./allocator.ts";
export { Cidr } from "./cidr.ts";
export { IpamError, type IpamErrorCode } from "./errors.ts";
export { canonicalBlocks, type Mode, type Pool, parsePool, validateChunkSize, validateMode } from "./pool.ts";
export { parseRequest, type RequestPlan, type RequestSpec, validateSize } from "./request.ts";
