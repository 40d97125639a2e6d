// The object model of the Kubernetes API as the client sees it: resource types, object metadata,
// Status, lists and watch events; object keys; some built-in resource types.

export interface ResourceType {
  /** API group, `""` for the core group (served under `/api/v1`). */
  group: string;
  version: string;
  /** Lower-case plural, the URL segment (`configmaps`). */
  plural: string;
  kind: string;
  namespaced: boolean;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: unknown[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A `meta/v1` Status, as returned for errors and some deletes. */
export interface Status {
  kind: "Status";
  apiVersion?: string;
  status?: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code?: number;
}

export interface ObjectList<T> {
  items: T[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK";
export type WatchEvent<T> = { type: WatchEventType; object: T } | { type: "ERROR"; object: Status };

/** `group/version`, or `version` for the core group. */
export function apiVersionOf(type: ResourceType): string {
  return type.group === "" ? type.version : `${type.group}/${type.version}`;
}

/** The store/queue key of an object: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  const name = obj.metadata.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

/** Splits a key made by `objectKey` into namespace (undefined if cluster-scoped) and name. */
export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const i = key.indexOf("/");
  if (i < 0) return { namespace: undefined, name: key };
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Some built-in types. */
export const CoreTypes = {
  namespace: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  configMap: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  secret: { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true },
  serviceAccount: {
    group: "",
    version: "v1",
    plural: "serviceaccounts",
    kind: "ServiceAccount",
    namespaced: true,
  },
  lease: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  event: { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
  customResourceDefinition: {
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    kind: "CustomResourceDefinition",
    namespaced: false,
  },
} as const satisfies Record<string, ResourceType>;

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
