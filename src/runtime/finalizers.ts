// Adding and removing finalizers safely under concurrency, without depending on resourceVersion
// (which every status write bumps, so a controller's cached copy is often one write behind):
// - add: server-side apply of just that entry. `metadata.finalizers` is a set, so concurrent writers
//   and other owners' entries are untouched; applying twice is a no-op.
// - remove: a JSON patch that tests the entry at its index, then removes it; if the list moved under
//   us the test fails (422) and the caller retries with a fresh copy.
import type { KubeClient, KubeObject, PatchOptions, ResourceType } from "./kube.ts";

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

function target(obj: KubeObject): { name: string; namespace: string | undefined } {
  const name = obj.metadata.name;
  if (!name) throw new Error("finalizer patch: the object has no name");
  return { name, namespace: obj.metadata.namespace };
}

/** Adds `finalizer` unless present (server-side apply). Returns the updated object. */
export async function addFinalizer<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  finalizer: string,
  opts: Omit<PatchOptions, "patchType" | "namespace" | "fieldManager"> & { fieldManager: string },
): Promise<T> {
  if (hasFinalizer(obj, finalizer)) return obj;
  const { name, namespace } = target(obj);
  return client.patch<T>(
    type,
    name,
    {
      apiVersion: type.group ? `${type.group}/${type.version}` : type.version,
      kind: type.kind,
      // With the uid the API server refuses instead of creating: apply creates missing objects, so an
      // object deleted since it was read would come back holding only the finalizer.
      metadata: {
        name,
        namespace,
        ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
        finalizers: [finalizer],
      },
    },
    // One field manager per finalizer: an applier's list is declarative, so a manager shared by two
    // finalizers would drop the first when applying the second.
    {
      force: true,
      ...opts,
      fieldManager: `${opts.fieldManager}/${finalizer}`.slice(0, 128),
      namespace,
      patchType: "apply",
    },
  );
}

/**
 * Removes `finalizer` if present. Returns the updated object (or `obj` unchanged); an object that is
 * already gone counts as done (returns undefined). Removing the last finalizer of an object being
 * deleted lets the deletion complete.
 */
export async function removeFinalizer<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  finalizer: string,
  opts: Omit<PatchOptions, "patchType" | "namespace"> = {},
): Promise<T | undefined> {
  const index = obj.metadata.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return obj;
  const { name, namespace } = target(obj);
  try {
    return await client.patch<T>(
      type,
      name,
      [
        { op: "test", path: `/metadata/finalizers/${index}`, value: finalizer },
        { op: "remove", path: `/metadata/finalizers/${index}` },
      ],
      { ...opts, namespace, patchType: "json" },
    );
  } catch (err) {
    if ((err as { status?: unknown }).status === 404) return undefined;
    throw err;
  }
}

/** How a reconciler adds and removes its finalizer (e.g. addFinalizer/removeFinalizer bound to a client). */
export interface FinalizerOps<T extends KubeObject> {
  add(obj: T): Promise<unknown>;
  remove(obj: T): Promise<unknown>;
}

/** What cleanup says: `done` lets the object go (the finalizer is removed). */
export interface Cleanup<R> {
  done: boolean;
  result: R;
}

/**
 * A reconcile wrapped in a finalizer, after kube-rs's `finalizer` helper: while the object lives, its
 * finalizer is ensured before `apply` runs (so whatever apply creates is cleaned up on deletion); once
 * it is being deleted, `cleanup` runs until it reports done, then the finalizer goes. An object being
 * deleted without the finalizer needs no cleanup (nothing was applied for it).
 */
export async function reconcileWithFinalizer<T extends KubeObject, R>(
  obj: T,
  finalizer: string,
  ops: FinalizerOps<T>,
  handlers: { apply(obj: T): Promise<R>; cleanup(obj: T): Promise<Cleanup<R>> },
  idle: R,
): Promise<R> {
  const present = hasFinalizer(obj, finalizer);
  if (obj.metadata.deletionTimestamp) {
    if (!present) return idle;
    const { done, result } = await handlers.cleanup(obj);
    if (done) await ops.remove(obj);
    return result;
  }
  if (!present) await ops.add(obj);
  return handlers.apply(obj);
}
