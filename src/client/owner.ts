// An owner reference to one of your objects, for requestAddress's `ownerReference`.

import type { KubeObject, OwnerReference } from "../runtime/kube.ts";

/**
 * `controller: true, blockOwnerDeletion: true` to `owner`, which must have been read from the API server
 * (it needs apiVersion, kind, name and uid) and live in the request's namespace.
 */
export function ownerReferenceTo(owner: KubeObject): OwnerReference {
  const { apiVersion, kind } = owner;
  const { name, uid } = owner.metadata;
  if (!apiVersion || !kind || !name || !uid) {
    throw new TypeError(
      "the owner needs apiVersion, kind, metadata.name and metadata.uid (read it from the API)",
    );
  }
  return { apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true };
}
