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
  | "MixedFamilies"
  | "Excluded"
  | "InvalidExclusion"
  | "InvalidCooling";

/** The only error the ipam module throws; `message` is the exact text users read in `status`. */
export class IpamError extends Error {
  readonly code: IpamErrorCode;
  /**
   * `Busy` only because of cooling space: the time (ms since the epoch) at which the operation
   * would succeed if nothing else changes. Undefined for every other failure.
   */
  readonly coolingUntil: number | undefined;

  constructor(code: IpamErrorCode, message: string, coolingUntil?: number) {
    super(message);
    this.name = "IpamError";
    this.code = code;
    this.coolingUntil = coolingUntil;
  }
}
