// The one error type of kubipam/client for requests that did not end Ready. It carries the request's
// last seen status as raw strings, so that reasons added by a newer controller still reach the caller.

import type { IPAMRequest } from "../api/types.ts";

/**
 * - `Invalid`: the controller rejected the request (status.state Invalid; the message says why).
 * - `Timeout`: not Ready within `timeoutMs` (typically still Busy: no space in the range).
 * - `Aborted`: the caller's signal aborted the wait.
 * - `SpecMismatch`: a request of that name exists with a different spec (specs are immutable).
 * - `Deleted`: the request was deleted (or is being deleted) while waiting.
 * - `Unsupported`: the cluster's kubipam does not know a field the call needs.
 */
export type AddressRequestErrorCode =
  | "Invalid"
  | "Timeout"
  | "Aborted"
  | "SpecMismatch"
  | "Deleted"
  | "Unsupported";

export interface AddressRequestErrorInit {
  code: AddressRequestErrorCode;
  namespace: string;
  name: string;
  message: string;
  request?: IPAMRequest | undefined;
  cause?: unknown;
}

export class AddressRequestError extends Error {
  override readonly name = "AddressRequestError";
  readonly code: AddressRequestErrorCode;
  readonly namespace: string;
  /** Name of the IPAMRequest. */
  readonly requestName: string;
  /** status.state when last seen (`Busy`, `Invalid`, …), undefined before the controller wrote one. */
  readonly state: string | undefined;
  /** Reason of the Ready condition when last seen (`NoSpace`, `Invalid`, `Forbidden`, …). */
  readonly reason: string | undefined;
  /** status.message when last seen, as the controller wrote it. */
  readonly statusMessage: string | undefined;
  /** The request as last seen, if it existed. */
  readonly request: IPAMRequest | undefined;

  constructor(init: AddressRequestErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.namespace = init.namespace;
    this.requestName = init.name;
    this.request = init.request;
    this.state = init.request?.status?.state;
    this.reason = readyReason(init.request);
    this.statusMessage = init.request?.status?.message;
  }
}

export function isAddressRequestError(
  err: unknown,
  code?: AddressRequestErrorCode,
): err is AddressRequestError {
  return err instanceof AddressRequestError && (code === undefined || err.code === code);
}

/** The reason of the request's Ready condition, if it has one. */
export function readyReason(request: IPAMRequest | undefined): string | undefined {
  return request?.status?.conditions?.find((c) => c.type === "Ready")?.reason;
}

/** `Busy (NoSpace): allocation with size 28 failed` — the last seen status in one phrase. */
export function describeStatus(request: IPAMRequest | undefined): string {
  if (!request) return "not found";
  const state = request.status?.state;
  if (!state) return "no status yet (is the kubipam controller running?)";
  const reason = readyReason(request);
  const message = request.status?.message;
  return `${state}${reason && reason !== state ? ` (${reason})` : ""}${message ? `: ${message}` : ""}`;
}
