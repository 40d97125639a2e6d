// Manifests: Kubernetes objects as plain data (YAML documents or objects), for bootstrapping a
// control plane and for tests; applied through the runtime's KubeClient (see discovery.ts).

import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../runtime/kube.ts";

/** An object of any kind, as written in a manifest: apiVersion and kind are required. */
export interface Manifest extends KubeObject {
  apiVersion: string;
  kind: string;
  [field: string]: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isManifest(value: unknown): value is Manifest {
  return (
    isRecord(value) &&
    typeof value.apiVersion === "string" &&
    typeof value.kind === "string" &&
    isRecord(value.metadata)
  );
}

/** Parses manifests given as YAML (one or more documents), one object, or a list of objects. */
export function parseManifests(input: string | object | readonly object[]): Manifest[] {
  let items: unknown[];
  if (typeof input === "string") {
    items = parseAllDocuments(input).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML manifest: ${doc.errors[0]?.message}`);
      return doc.toJS() as unknown;
    });
  } else if (Array.isArray(input)) {
    items = [...input];
  } else {
    items = [input];
  }
  const objects: Manifest[] = [];
  for (const item of items) {
    if (item === null || item === undefined) continue;
    if (
      isRecord(item) &&
      typeof item.kind === "string" &&
      item.kind.endsWith("List") &&
      Array.isArray(item.items)
    ) {
      objects.push(...parseManifests(item.items as object[]));
      continue;
    }
    if (!isManifest(item)) {
      throw new Error(`not a Kubernetes object (needs apiVersion, kind, metadata): ${JSON.stringify(item)}`);
    }
    objects.push(item);
  }
  return objects;
}
