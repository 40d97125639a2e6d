// requestAddress and releaseAddress: an IPAMRequest's life as two calls.

import type { IPAMRequest } from "../api/types.ts";
import { ipamRequestResource } from "../api/types.ts";
import { isAlreadyExists, isApiError, isNotFound, type KubeClient } from "../runtime/kube.ts";
import { type ConnectionOptions, withClient } from "./connection.ts";
import { AddressRequestError, type AddressRequestErrorCode, describeStatus } from "./errors.ts";
import {
  type AddressSpec,
  checkAddressSpec,
  desiredRequest,
  type RequestSpec,
  requestOutcome,
  specDifferences,
  timeoutOf,
} from "./spec.ts";
import { waitFor } from "./wait.ts";

export const DEFAULT_TIMEOUT_MS = 60_000;

export interface WaitOptions {
  /** Stops the wait; the call rejects with code `Aborted`. */
  signal?: AbortSignal;
  /** How long to wait, ms (default 60 s); then the call rejects with code `Timeout`. */
  timeoutMs?: number;
}

export interface FailureOptions {
  /**
   * Delete the request when the call fails (Invalid, Timeout, Aborted). Default false: the request stays
   * and keeps its place — a Busy request is allocated as soon as space is freed, and calling again with
   * the same name picks it up.
   */
  deleteOnFailure?: boolean;
}

export type RequestAddressOptions = AddressSpec & ConnectionOptions & WaitOptions & FailureOptions;

export interface AddressResult {
  /** The allocated block, e.g. `10.0.3.0/28` (a single IP is `/32` or `/128`). */
  cidr: string;
  /** The IPAMRequest as it was when it became Ready. */
  request: IPAMRequest;
}

/**
 * Creates the IPAMRequest `namespace/name` (or adopts an existing one with the same spec), waits until the
 * controller allocated it and returns the CIDR. Rejects with AddressRequestError: `Invalid`, `Timeout`,
 * `Aborted`, `SpecMismatch`, `Deleted`, `Unsupported`; with TypeError for bad options; with the API's
 * error (ApiError) for anything the API server refused.
 */
export function requestAddress(options: RequestAddressOptions): Promise<AddressResult> {
  checkAddressSpec(options);
  const timeoutMs = timeoutOf(options.timeoutMs, DEFAULT_TIMEOUT_MS);
  return withClient(options, (client) => requestWith(client, options, timeoutMs));
}

async function requestWith(
  client: KubeClient,
  o: RequestAddressOptions,
  timeoutMs: number,
): Promise<AddressResult> {
  const { namespace, name } = o;
  const fail = (code: AddressRequestErrorCode, message: string, request?: IPAMRequest, cause?: unknown) =>
    new AddressRequestError({ code, namespace, name, message, request, cause });
  const wanted = desiredRequest(o);
  const timer = new AbortController();
  const timeout = setTimeout(() => timer.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timer.signal]) : timer.signal;
  let last: IPAMRequest | undefined;
  try {
    signal.throwIfAborted();
    const created = await createOrAdopt(client, wanted, signal, fail);
    last = created;
    return await waitFor<IPAMRequest, AddressResult>(
      client,
      ipamRequestResource,
      { namespace, name },
      (request) => {
        const outcome = requestOutcome(request);
        if (outcome.kind === "ready" && request) return { cidr: outcome.cidr, request };
        if (outcome.kind === "invalid") {
          throw fail("Invalid", `IPAMRequest ${namespace}/${name} is ${describeStatus(request)}`, request);
        }
        if (outcome.kind === "deleted") {
          throw fail(
            "Deleted",
            `IPAMRequest ${namespace}/${name} was deleted while waiting for an address`,
            request ?? last,
          );
        }
        return undefined;
      },
      signal,
      (request) => {
        if (request) last = request;
      },
    );
  } catch (err) {
    const error = asRequestError(err, o, timer.signal, last, timeoutMs, fail);
    if (o.deleteOnFailure && error instanceof AddressRequestError && deletable(error.code)) {
      await deleteQuietly(client, namespace, name, error);
    }
    throw error;
  } finally {
    clearTimeout(timeout);
  }
}

/** Creates the request; if one of that name exists, adopts it when it asks for the same thing. */
async function createOrAdopt(
  client: KubeClient,
  wanted: IPAMRequest,
  signal: AbortSignal,
  fail: (code: AddressRequestErrorCode, message: string, request?: IPAMRequest) => AddressRequestError,
  retried = false,
): Promise<IPAMRequest> {
  const namespace = wanted.metadata.namespace ?? "";
  const name = wanted.metadata.name ?? "";
  const what = `IPAMRequest ${namespace}/${name}`;
  try {
    const created = await client.create<IPAMRequest>(ipamRequestResource, wanted, { namespace, signal });
    const kind = (wanted.spec as RequestSpec).ipam.kind;
    if (kind && (created.spec as RequestSpec).ipam?.kind !== kind) {
      // The API server pruned the field: this kubipam would allocate from an IPAMRange instead.
      await client.delete(ipamRequestResource, name, {
        namespace,
        preconditions: { uid: created.metadata.uid },
      });
      throw fail("Unsupported", `${what}: this cluster's kubipam does not support spec.ipam.kind ${kind}`);
    }
    return created;
  } catch (err) {
    if (isNotFound(err)) throw explainNotFound(err, what);
    if (!isAlreadyExists(err)) throw err;
  }
  let existing: IPAMRequest;
  try {
    existing = await client.get<IPAMRequest>(ipamRequestResource, name, { namespace, signal });
  } catch (err) {
    // Deleted between our create and this read: create again (once; a second race is reported).
    if (isNotFound(err) && !retried) return createOrAdopt(client, wanted, signal, fail, true);
    throw err;
  }
  const diff = specDifferences(existing.spec as RequestSpec, wanted.spec as RequestSpec, namespace);
  if (diff.length > 0) {
    throw fail(
      "SpecMismatch",
      `${what} already exists with a different spec (${diff.join("; ")}); a request's spec cannot change: ` +
        "release it first or use another name",
      existing,
    );
  }
  if (existing.metadata.deletionTimestamp) {
    throw fail(
      "Deleted",
      `${what} is being deleted; wait for releaseAddress({ wait: true }) first`,
      existing,
    );
  }
  return existing;
}

/**
 * A 404 on create: the namespace is missing (the API's message says so), or the API server does not
 * serve IPAMRequests at all — kubipam's CRDs are not installed.
 */
export function explainNotFound(err: unknown, what: string): unknown {
  if (!isApiError(err) || err.details?.kind === "namespaces" || err.details?.name) return err;
  return new Error(
    `${what}: the API server does not serve ${ipamRequestResource.plural}.${ipamRequestResource.group}/` +
      `${ipamRequestResource.version}; is kubipam installed (kubectl apply -k deploy/)?`,
    { cause: err },
  );
}

function asRequestError(
  err: unknown,
  o: RequestAddressOptions,
  timer: AbortSignal,
  last: IPAMRequest | undefined,
  timeoutMs: number,
  fail: (
    code: AddressRequestErrorCode,
    message: string,
    request?: IPAMRequest,
    cause?: unknown,
  ) => AddressRequestError,
): unknown {
  if (err instanceof AddressRequestError) return err;
  const what = `IPAMRequest ${o.namespace}/${o.name}`;
  const kept = o.deleteOnFailure ? "it is deleted" : "it stays in place and is allocated when space is freed";
  if (o.signal?.aborted) {
    return fail(
      "Aborted",
      `${what}: wait aborted; last status ${describeStatus(last)}`,
      last,
      o.signal.reason,
    );
  }
  if (timer.aborted) {
    return fail(
      "Timeout",
      `${what} not Ready after ${timeoutMs} ms, still ${describeStatus(last)}; ${kept}`,
      last,
      timer.reason,
    );
  }
  return err;
}

const deletable = (code: AddressRequestErrorCode) =>
  code === "Invalid" || code === "Timeout" || code === "Aborted";

async function deleteQuietly(
  client: KubeClient,
  namespace: string,
  name: string,
  error: Error,
): Promise<void> {
  try {
    await client.delete(ipamRequestResource, name, { namespace, timeoutMs: 10_000 });
  } catch (err) {
    if (!isNotFound(err)) error.message += ` (deleting it failed too: ${String(err)})`;
  }
}

export interface ReleaseAddressOptions extends ConnectionOptions, WaitOptions {
  namespace: string;
  name: string;
  /** Wait until the controller released the block and the request is gone (default false). */
  wait?: boolean;
}

/**
 * Deletes the IPAMRequest `namespace/name`; the controller releases its block. Resolves true if it
 * existed, false if there was nothing to delete. With `wait`, resolves once it is gone (rejects with
 * AddressRequestError `Timeout`/`Aborted` otherwise).
 */
export function releaseAddress(options: ReleaseAddressOptions): Promise<boolean> {
  const { namespace, name } = options;
  for (const [what, v] of [
    ["namespace", namespace],
    ["name", name],
  ] as const) {
    if (typeof v !== "string" || v === "") throw new TypeError(`${what} must be a non-empty string`);
  }
  const timeoutMs = timeoutOf(options.timeoutMs, DEFAULT_TIMEOUT_MS);
  return withClient(options, async (client) => {
    try {
      await client.delete(ipamRequestResource, name, { namespace, signal: options.signal });
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    if (!options.wait) return true;
    await waitGone(client, options, timeoutMs);
    return true;
  });
}

async function waitGone(client: KubeClient, o: ReleaseAddressOptions, timeoutMs: number): Promise<void> {
  const timer = new AbortController();
  const timeout = setTimeout(() => timer.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timer.signal]) : timer.signal;
  let last: IPAMRequest | undefined;
  const what = `IPAMRequest ${o.namespace}/${o.name}`;
  try {
    await waitFor<IPAMRequest, true>(
      client,
      ipamRequestResource,
      { namespace: o.namespace, name: o.name },
      (request) => (request ? undefined : true),
      signal,
      (request) => {
        last = request;
      },
    );
  } catch (err) {
    const aborted = o.signal?.aborted;
    if (!aborted && !timer.signal.aborted) throw err;
    throw new AddressRequestError({
      code: aborted ? "Aborted" : "Timeout",
      namespace: o.namespace,
      name: o.name,
      message: `${what} still exists ${aborted ? "when the wait was aborted" : `after ${timeoutMs} ms`} (finalizers: ${
        last?.metadata.finalizers?.join(", ") || "none"
      }); is the kubipam controller running?`,
      request: last,
      cause: err,
    });
  } finally {
    clearTimeout(timeout);
  }
}
