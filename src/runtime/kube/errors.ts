// Errors of the Kubernetes client: the API server's answers (ApiError, with predicates by status and
// reason) and the client's own timeout (the outcome of a write is then unknown).

import { isRecord, type Status, type StatusDetails } from "./meta.ts";

const REASON_BY_CODE: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  406: "NotAcceptable",
  409: "Conflict",
  410: "Expired",
  413: "RequestEntityTooLarge",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** An error answer of the API server (any non-2xx HTTP status). */
export class ApiError extends Error {
  override readonly name = "ApiError";
  /** HTTP status code. */
  readonly status: number;
  /** The Status `reason` (`NotFound`, `Conflict`, `AlreadyExists`, `Expired`, `Invalid`, …). */
  readonly reason: string;
  readonly details: StatusDetails | undefined;
  /** The decoded body (a Status for API errors). */
  readonly body: unknown;
  readonly verb: string;
  readonly resource: string;

  constructor(init: {
    status: number;
    reason?: string;
    message?: string;
    details?: StatusDetails;
    body?: unknown;
    verb?: string;
    resource?: string;
  }) {
    const reason = init.reason || REASON_BY_CODE[init.status] || "Unknown";
    super(init.message || `${reason} (HTTP ${init.status})`);
    this.status = init.status;
    this.reason = reason;
    this.details = init.details;
    this.body = init.body;
    this.verb = init.verb ?? "";
    this.resource = init.resource ?? "";
  }

  /** Builds an ApiError from a Status object (e.g. a watch ERROR event). */
  static fromStatus(status: Status, verb = "", resource = ""): ApiError {
    return new ApiError({
      status: status.code ?? 500,
      reason: status.reason,
      message: status.message,
      details: status.details,
      body: status,
      verb,
      resource,
    });
  }
}

/** The client gave up waiting for an answer; the request may or may not have been applied. */
export class RequestTimeoutError extends Error {
  override readonly name = "RequestTimeoutError";
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number) {
    super(message);
    this.timeoutMs = timeoutMs;
  }
}

function apiErr(err: unknown): ApiError | undefined {
  return err instanceof ApiError ? err : undefined;
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}
export function isNotFound(err: unknown): boolean {
  return apiErr(err)?.status === 404;
}
/** 409 other than AlreadyExists: an optimistic-concurrency (resourceVersion) conflict. */
export function isConflict(err: unknown): boolean {
  const e = apiErr(err);
  return e !== undefined && e.status === 409 && e.reason !== "AlreadyExists";
}
export function isAlreadyExists(err: unknown): boolean {
  const e = apiErr(err);
  return e !== undefined && e.status === 409 && e.reason === "AlreadyExists";
}
/** 410: the resourceVersion is too old (watch/list continue expired). */
export function isGone(err: unknown): boolean {
  return apiErr(err)?.status === 410;
}
export function isForbidden(err: unknown): boolean {
  return apiErr(err)?.status === 403;
}
export function isUnauthorized(err: unknown): boolean {
  return apiErr(err)?.status === 401;
}
export function isUnprocessable(err: unknown): boolean {
  return apiErr(err)?.status === 422;
}
export function isTooManyRequests(err: unknown): boolean {
  return apiErr(err)?.status === 429;
}
/** A timeout on either side: the outcome of a write is unknown. */
export function isTimeout(err: unknown): boolean {
  if (err instanceof RequestTimeoutError) return true;
  const e = apiErr(err);
  return e !== undefined && (e.status === 504 || e.reason === "Timeout" || e.reason === "ServerTimeout");
}
/** The request was aborted by the caller's AbortSignal. */
export function isAbortError(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === "AbortError" || (err as { code?: unknown }).code === "ABORT_ERR")
  );
}

/** The ApiError for a non-2xx answer: from its Status body when there is one, else from the text. */
export function apiErrorFromAnswer(status: number, text: string, verb: string, resource: string): ApiError {
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (isRecord(parsed) && parsed.kind === "Status") {
    const s = parsed as unknown as Status;
    return new ApiError({
      status,
      reason: s.reason,
      message: s.message,
      details: s.details,
      body: s,
      verb,
      resource,
    });
  }
  return new ApiError({
    status,
    message: text ? `${REASON_BY_CODE[status] ?? "Error"}: ${text.slice(0, 500)}` : undefined,
    body: parsed ?? text,
    verb,
    resource,
  });
}
