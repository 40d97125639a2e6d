// A small JSON client for the Kubernetes REST API: plain objects in and out, no generated models.
// Used to bootstrap the local control plane (CRDs, namespaces, service accounts) and by the test
// harness. The product's controllers use src/runtime instead.

import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface ApiResource {
  /** Collection path without the namespace part, e.g. `/apis/apps/v1` + `deployments`. */
  groupVersionPath: string;
  plural: string;
  namespaced: boolean;
}

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
    this.name = "KubeApiError";
  }
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  signal?: AbortSignal;
}

export interface RawResponse {
  status: number;
  text: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isKubeObject(value: unknown): value is KubeObject {
  return (
    isRecord(value) &&
    typeof value.apiVersion === "string" &&
    typeof value.kind === "string" &&
    isRecord(value.metadata)
  );
}

/** Parses manifests given as YAML (one or more documents), one object, or a list of objects. */
export function parseManifests(input: string | object | readonly object[]): KubeObject[] {
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
  const objects: KubeObject[] = [];
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
    if (!isKubeObject(item)) {
      throw new Error(`not a Kubernetes object (needs apiVersion, kind, metadata): ${JSON.stringify(item)}`);
    }
    objects.push(item);
  }
  return objects;
}

export class RestClient {
  readonly #kubeConfig: KubeConfig;
  readonly #server: string;
  readonly #discovery = new Map<string, Map<string, ApiResource>>();

  constructor(kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.#kubeConfig = kubeConfig;
    this.#server = cluster.server.replace(/\/+$/, "");
  }

  /** One HTTP request; resolves with any status, rejects only on transport errors. */
  async raw(method: string, path: string, options: RequestOptions = {}): Promise<RawResponse> {
    const url = new URL(this.#server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const requestOptions: https.RequestOptions = { method, headers: { Accept: "application/json" } };
    await this.#kubeConfig.applyToHTTPSOptions(requestOptions);
    const payload =
      options.body === undefined
        ? undefined
        : typeof options.body === "string"
          ? options.body
          : JSON.stringify(options.body);
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(requestOptions.headers ?? {})) {
      if (typeof value === "string") headers[key] = value;
      else if (typeof value === "number") headers[key] = String(value);
    }
    if (payload !== undefined) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    return new Promise((resolve, reject) => {
      const request = https.request(
        url,
        { ...requestOptions, headers, signal: options.signal },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () =>
            resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
          );
        },
      );
      request.on("error", reject);
      request.end(payload);
    });
  }

  /** A request whose 2xx JSON body is returned; other statuses throw `KubeApiError`. */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.raw(method, path, options);
    let body: unknown = response.text;
    try {
      body = response.text === "" ? undefined : JSON.parse(response.text);
    } catch {
      // not JSON; keep the text
    }
    if (response.status < 200 || response.status > 299) {
      const reason = isRecord(body) && typeof body.reason === "string" ? body.reason : "";
      const message = isRecord(body) && typeof body.message === "string" ? body.message : response.text;
      throw new KubeApiError(
        response.status,
        reason,
        `${method} ${path}: ${response.status} ${message}`,
        body,
      );
    }
    return body as T;
  }

  /** Finds the REST resource for an apiVersion and kind through discovery (cached; refreshed on a miss). */
  async resourceFor(apiVersion: string, kind: string): Promise<ApiResource | undefined> {
    const cached = this.#discovery.get(apiVersion)?.get(kind);
    if (cached) return cached;
    const groupVersionPath = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    let list: unknown;
    try {
      list = await this.request("GET", groupVersionPath);
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw error;
    }
    const byKind = new Map<string, ApiResource>();
    const resources = isRecord(list) && Array.isArray(list.resources) ? list.resources : [];
    for (const resource of resources) {
      if (!isRecord(resource) || typeof resource.name !== "string" || typeof resource.kind !== "string")
        continue;
      if (resource.name.includes("/")) continue; // subresources
      byKind.set(resource.kind, {
        groupVersionPath,
        plural: resource.name,
        namespaced: resource.namespaced === true,
      });
    }
    this.#discovery.set(apiVersion, byKind);
    return byKind.get(kind);
  }

  /** The URL path of an object (or of its collection when it has no name). */
  async pathFor(object: KubeObject, defaultNamespace?: string): Promise<string> {
    const resource = await this.resourceFor(object.apiVersion, object.kind);
    if (!resource) throw new Error(`the server does not serve ${object.kind} in ${object.apiVersion}`);
    let path = resource.groupVersionPath;
    if (resource.namespaced) {
      const namespace = object.metadata.namespace ?? defaultNamespace;
      if (!namespace) throw new Error(`${object.kind} ${object.metadata.name ?? ""} needs a namespace`);
      path += `/namespaces/${encodeURIComponent(namespace)}`;
    }
    path += `/${resource.plural}`;
    if (object.metadata.name) path += `/${encodeURIComponent(object.metadata.name)}`;
    return path;
  }

  /**
   * Server-side apply of one object (`force`, so this field manager wins conflicts). A namespaced
   * object without a namespace goes to `defaultNamespace`.
   */
  async apply(object: KubeObject, fieldManager: string, defaultNamespace?: string): Promise<KubeObject> {
    if (!object.metadata.name) throw new Error(`${object.kind} without metadata.name cannot be applied`);
    const path = await this.pathFor(object, defaultNamespace);
    const resource = await this.resourceFor(object.apiVersion, object.kind);
    const body =
      resource?.namespaced && !object.metadata.namespace && defaultNamespace
        ? { ...object, metadata: { ...object.metadata, namespace: defaultNamespace } }
        : object;
    const applied = await this.request("PATCH", path, {
      body,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager, force: true },
    });
    if (!isKubeObject(applied)) throw new Error(`unexpected apply response for ${path}`);
    return applied;
  }

  /** Forgets discovery results (after installing CRDs, for example). */
  forgetDiscovery(): void {
    this.#discovery.clear();
  }
}
