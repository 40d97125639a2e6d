// Informer transforms (like client-go's SetTransform): what an informer keeps of each object decides
// most of a controller's memory. Drop what no reconciler reads, and let equal strings and equal
// subtrees of many objects share one copy (JSON.parse gives every value its own).

import type { KubeObject } from "./kube.ts";

/** The annotation `kubectl apply` writes: a copy of the whole object as last applied. */
export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/** Drops `metadata.managedFields` (half an object's JSON on a busy server; only the server reads it). */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata?.managedFields !== undefined) obj.metadata.managedFields = undefined;
  return obj;
}

/**
 * One shared copy per distinct string. Bounded: once it holds `maxEntries` strings it starts afresh
 * (strings already shared stay shared), so a long-running process never accumulates unique values.
 */
export class StringInterner {
  private table = new Map<string, string>();
  constructor(private readonly maxEntries = 20_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new Error(`StringInterner: maxEntries must be a positive integer, not ${maxEntries}`);
    }
  }

  intern(s: string): string {
    const known = this.table.get(s);
    if (known !== undefined) return known;
    if (this.table.size >= this.maxEntries) this.table = new Map();
    this.table.set(s, s);
    return s;
  }

  get size(): number {
    return this.table.size;
  }
}

/**
 * Replaces, in place, every string value inside `value` (objects and arrays, any depth) by the
 * interner's copy, except the values of properties named in `skipKeys` (values unique to one object,
 * such as `uid` or `resourceVersion`, would only fill the table). Property names need nothing: V8
 * already shares those. Returns `value`.
 */
export function internStrings<V>(value: V, interner: StringInterner, skipKeys: ReadonlySet<string>): V {
  if (Object.isFrozen(value)) return value; // a shared subtree: done already (and read-only)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = shared(value[i], interner, skipKeys);
  } else if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item !== "string") internStrings(item, interner, skipKeys);
      else if (!skipKeys.has(key)) record[key] = interner.intern(item);
    }
  }
  return value;
}

/** An array element: a string's shared copy, or the element with its contents shared. */
function shared(item: unknown, interner: StringInterner, skipKeys: ReadonlySet<string>): unknown {
  return typeof item === "string" ? interner.intern(item) : internStrings(item, interner, skipKeys);
}

/** Freezes a value and everything in it (plain objects and arrays). */
function deepFreeze<V>(value: V): V {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/**
 * One shared, frozen copy per distinct plain subtree (by its JSON): the conditions of a thousand Ready
 * requests differ only in a few transition times, their specs name a few ranges. Cached objects are
 * read-only by contract; freezing the shared copies makes a write to one a TypeError instead of a
 * change to all. Bounded like StringInterner.
 */
export class SubtreeInterner {
  private table = new Map<string, unknown>();
  constructor(private readonly maxEntries = 5_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new Error(`SubtreeInterner: maxEntries must be a positive integer, not ${maxEntries}`);
    }
  }

  share<V>(value: V): V {
    const key = JSON.stringify(value);
    const known = this.table.get(key);
    if (known !== undefined) return known as V;
    if (this.table.size >= this.maxEntries) this.table = new Map();
    this.table.set(key, deepFreeze(value));
    return value;
  }

  get size(): number {
    return this.table.size;
  }
}

/** Replaces, in place, the object or array at each dotted path (`status.conditions`) by its shared copy. */
export function shareSubtrees<T extends object>(
  obj: T,
  interner: SubtreeInterner,
  paths: readonly string[],
): T {
  for (const path of paths) {
    const names = path.split(".");
    const last = names.pop() as string;
    let parent: unknown = obj;
    for (const name of names) parent = isPlainRecord(parent) ? parent[name] : undefined;
    if (!isPlainRecord(parent) || Object.isFrozen(parent)) continue;
    const value = parent[last];
    if (value !== null && typeof value === "object") parent[last] = interner.share(value);
  }
  return obj;
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

export interface CompactOptions {
  /** Annotations to drop (default: `kubectl.kubernetes.io/last-applied-configuration`). */
  dropAnnotations?: readonly string[];
  /** Share equal strings across objects through this interner (default: no sharing). */
  interner?: StringInterner;
  /** Property names whose string values are not shared (default: uid, resourceVersion). */
  uniqueKeys?: ReadonlySet<string>;
  /** Share equal subtrees at these dotted paths (`spec`, `status.conditions`) through `subtrees`. */
  sharedPaths?: readonly string[];
  subtrees?: SubtreeInterner;
}

const DEFAULT_UNIQUE_KEYS: ReadonlySet<string> = new Set(["uid", "resourceVersion"]);

/**
 * An informer transform that keeps what a controller reads at a fraction of the memory: no
 * managedFields, no `kubectl apply` copy of the object, and (with an interner) one copy of each
 * repeated string. Idempotent, so applying it to an object already transformed is harmless.
 */
export function compactObjects<T extends KubeObject>(options: CompactOptions = {}): (obj: T) => T {
  const drop = options.dropAnnotations ?? [LAST_APPLIED_ANNOTATION];
  const unique = options.uniqueKeys ?? DEFAULT_UNIQUE_KEYS;
  const { interner, subtrees, sharedPaths = [] } = options;
  return (obj) => {
    stripManagedFields(obj);
    const annotations = obj.metadata?.annotations;
    if (annotations && !Object.isFrozen(annotations)) {
      for (const name of drop) delete annotations[name];
      if (Object.keys(annotations).length === 0) obj.metadata.annotations = undefined;
    }
    // Strings first: shared subtrees then hold shared strings too (and are frozen, so never walked again).
    if (interner) internStrings(obj, interner, unique);
    return subtrees ? shareSubtrees(obj, subtrees, sharedPaths) : obj;
  };
}
