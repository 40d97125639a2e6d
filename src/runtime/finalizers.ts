// Adding and removing finalizers safely under concurrency: a merge patch that carries
// `metadata.resourceVersion`, so the API server rejects it with 409 Conflict if the object changed since
// it was read (the finalizer list is replaced as a whole by a merge patch, so this check matters).
import type { KubeClient, KubeObject, PatchOptions, ResourceType } from "./kube.ts";

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

function requireRv(obj: KubeObject): string {
  const rv = obj.metadata.resourceVersion;
  if (!rv) throw new Error("finalizer patch: the object has no resourceVersion (read it from the API first)");
  return rv;
}

function target(obj: KubeObject): { name: string; namespace: string | undefined } {
  const name = obj.metadata.name;
  if (!name) throw new Error("finalizer patch: the object has no name");
  return { name, namespace: obj.metadata.namespace };
}

/**
 * Adds `finalizer` unless present. Returns the updated object (or `obj` unchanged). Throws an ApiError
 * with `isConflict` true if the object changed since `obj` was read; re-read and retry then.
 */
export async function addFinalizer<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  finalizer: string,
  opts: Omit<PatchOptions, "patchType" | "namespace"> = {},
): Promise<T> {
  if (hasFinalizer(obj, finalizer)) return obj;
  const { name, namespace } = target(obj);
  const finalizers = [...(obj.metadata.finalizers ?? []), finalizer];
  return client.patch<T>(
    type,
    name,
    { metadata: { resourceVersion: requireRv(obj), finalizers } },
    { ...opts, namespace, patchType: "merge" },
  );
}

/**
 * Removes `finalizer` if present. Returns the updated object (or `obj` unchanged). Conflicts as in
 * `addFinalizer`. Removing the last finalizer of an object being deleted lets the deletion complete.
 */
export async function removeFinalizer<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: T,
  finalizer: string,
  opts: Omit<PatchOptions, "patchType" | "namespace"> = {},
): Promise<T> {
  if (!hasFinalizer(obj, finalizer)) return obj;
  const { name, namespace } = target(obj);
  const finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  return client.patch<T>(
    type,
    name,
    { metadata: { resourceVersion: requireRv(obj), finalizers } },
    { ...opts, namespace, patchType: "merge" },
  );
}
