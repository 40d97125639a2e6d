/**
 * Why an IPAM operation failed. The controller maps codes to request/range states:
 * `Busy` is retried when space frees up; every other code is a permanent `Invalid` until the
 * specification (or the range) changes.
 */
export type IpamErrorCode =
  | "InvalidRange"
  | "InvalidMode"
  | "InvalidSize"
  | "InvalidRequest"
  | "InvalidCursor"
  | "Busy"
  | "Outside"
  | "NeverFits"
  | "NotAllocated"
  | "MixedFamilies";

/** The only error the ipam module throws; `message` is the exact text users read in `status`. */
export class IpamError extends Error {
  readonly code: IpamErrorCode;

  constructor(code: IpamErrorCode, message: string) {
    super(message);
    this.name = "IpamError";
    this.code = code;
  }
}
