export { type AddressKey, type Family, formatAddress, parseAddress, widthOf } from "./address.ts";
export {
  Allocator,
  type AllocatorOptions,
  type RebuildOptions,
  type RebuildResult,
  type Rejection,
  type ReleaseOptions,
  type TimeOptions,
  type Usage,
} from "./allocator.ts";
export { Cidr } from "./cidr.ts";
export { type CoolingBlock, formatCooling, parseCooling, parseCoolingEntries } from "./cooling.ts";
export { IpamError, type IpamErrorCode } from "./errors.ts";
export { type Exclusion, parseExclusions, parseGateway } from "./exclusions.ts";
export { canonicalBlocks, type Mode, type Pool, parsePool, validateChunkSize, validateMode } from "./pool.ts";
export { parseRequest, type RequestPlan, type RequestSpec, validateSize } from "./request.ts";
