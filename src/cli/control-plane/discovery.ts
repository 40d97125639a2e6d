// API discovery for manifests of any kind: which resource (plural, scope) serves an apiVersion and
// kind, so that a manifest can be applied or addressed with the runtime's KubeClient.

import { isNotFound, type KubeClient, type ResourceType } from "../../runtime/kube.ts";
import type { Manifest } from "./manifests.ts";

interface ApiResourceList {
  resources?: { name?: string; kind?: string; namespaced?: boolean }[];
}

export class ResourceDiscovery {
  readonly #byGroupVersion = new Map<string, Map<string, ResourceType>>();

  constructor(readonly client: KubeClient) {}

  /** The resource serving `kind` in `apiVersion` (cached; asked again on a miss), or undefined. */
  async resourceFor(apiVersion: string, kind: string): Promise<ResourceType | undefined> {
    const cached = this.#byGroupVersion.get(apiVersion)?.get(kind);
    if (cached) return cached;
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
    const path = group ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let list: ApiResourceList;
    try {
      list = await this.client.request<ApiResourceList>("GET", path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const byKind = new Map<string, ResourceType>();
    for (const resource of list.resources ?? []) {
      if (!resource.name || !resource.kind || resource.name.includes("/")) continue; // subresources
      byKind.set(resource.kind, {
        group: group ?? "",
        version: version ?? "",
        plural: resource.name,
        kind: resource.kind,
        namespaced: resource.namespaced === true,
      });
    }
    this.#byGroupVersion.set(apiVersion, byKind);
    return byKind.get(kind);
  }

  /** The resource of a manifest; throws when the server does not serve it. */
  async resourceOf(object: Manifest): Promise<ResourceType> {
    const type = await this.resourceFor(object.apiVersion, object.kind);
    if (!type) throw new Error(`the server does not serve ${object.kind} in ${object.apiVersion}`);
    return type;
  }

  /** The URL path of an object (or of its collection when it has no name). */
  async pathFor(object: Manifest, defaultNamespace?: string): Promise<string> {
    const type = await this.resourceOf(object);
    const namespace = type.namespaced ? (object.metadata.namespace ?? defaultNamespace) : undefined;
    if (type.namespaced && !namespace) {
      throw new Error(`${object.kind} ${object.metadata.name ?? ""} needs a namespace`);
    }
    return this.client.resourcePath(type, namespace, object.metadata.name);
  }

  /**
   * Server-side apply of one object (forced, so this field manager wins conflicts). A namespaced
   * object without a namespace goes to `defaultNamespace`.
   */
  async apply(object: Manifest, fieldManager: string, defaultNamespace?: string): Promise<Manifest> {
    if (!object.metadata.name) throw new Error(`${object.kind} without metadata.name cannot be applied`);
    const type = await this.resourceOf(object);
    const namespace = type.namespaced ? (object.metadata.namespace ?? defaultNamespace) : undefined;
    const body = namespace ? { ...object, metadata: { ...object.metadata, namespace } } : object;
    return this.client.apply<Manifest>(type, body, { fieldManager, force: true, namespace });
  }
}
