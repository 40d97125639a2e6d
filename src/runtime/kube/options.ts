// Options of the Kubernetes client and of its operations.

import type { Logger } from "../logger.ts";
import type { Registry } from "../metrics.ts";
import type { KubeObject } from "./meta.ts";
import type { RequestHook } from "./transport.ts";

export interface KubeClientOptions {
  /** Default timeout for non-watch requests, ms (default 30 s). */
  timeoutMs?: number;
  /** Maximum sockets of the pool for ordinary requests (default 128). Watches use their own pool. */
  maxSockets?: number;
  userAgent?: string;
  hooks?: RequestHook[];
  registry?: Registry;
  logger?: Logger;
  /** Retries of a 429 Too Many Requests (honouring Retry-After, default 5). */
  maxRetries429?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}
/** A request at a path (`raw`, `request`): a body (JSON unless a string) and query parameters. */
export interface RawRequestOptions extends RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
}
export interface NamespacedOptions extends RequestOptions {
  namespace?: string;
}
export interface ListOptions extends NamespacedOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: "Exact" | "NotOlderThan";
}
export interface ListAllOptions<T extends KubeObject = KubeObject>
  extends Omit<ListOptions, "limit" | "continue"> {
  /** Page size (default 500). */
  pageSize?: number;
  /** Applied to each item as its page arrives (e.g. dropping managedFields keeps the peak low). */
  transform?: (item: T) => T;
}
export interface WriteOptions extends NamespacedOptions {
  fieldManager?: string;
  dryRun?: boolean;
  fieldValidation?: "Ignore" | "Warn" | "Strict";
}
export type PatchType = "merge" | "json" | "strategic" | "apply";
export interface PatchOptions extends WriteOptions {
  /** Default `merge`. `apply` is server-side apply and needs `fieldManager`. */
  patchType?: PatchType;
  /** Server-side apply: take over conflicting fields. */
  force?: boolean;
}
export interface DeleteOptions extends NamespacedOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  gracePeriodSeconds?: number;
  dryRun?: boolean;
}
export interface WatchOptions {
  namespace?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
  labelSelector?: string;
  fieldSelector?: string;
  /** Give up when no bytes arrive for this long (default: timeoutSeconds + 60 s, or 6 min). */
  idleTimeoutMs?: number;
}

export type JsonPatchOp =
  | { op: "add" | "replace" | "test"; path: string; value: unknown }
  | { op: "remove"; path: string }
  | { op: "move" | "copy"; from: string; path: string };

export const CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};
