// A complete operator on kubipam/client: every Tenant (a custom resource of this example) gets a /28
// from an IPAMRange, shown in its status, and gives it back when deleted.
//
// - The IPAMRequest is named after the tenant (`tenant-<name>`), so a restarted operator adopts it
//   instead of allocating again.
// - It carries an owner reference to the tenant: if the tenant vanishes without this operator (say its
//   finalizer was removed by hand), Kubernetes' garbage collector deletes the request and kubipam
//   releases the block.
// - A finalizer on the tenant makes deletion wait until the block is released (releaseAddress with
//   `wait`), so a tenant that is gone never still holds addresses.
// - A tenant that finds the range full keeps its request (it stays Busy and is allocated as soon as
//   space is freed); the watch on the operator's requests brings the tenant back when that happens.

import {
  AddressRequestError,
  isConflict,
  isNotFound,
  type KubeClient,
  type KubeObject,
  ownerReferenceTo,
  type RangeRef,
  releaseAddress,
  requestAddress,
  watchObjects,
  watchRequests,
} from "kubipam/client";

export const tenantResource = {
  group: "example.kubipam.dev",
  version: "v1",
  plural: "tenants",
  kind: "Tenant",
  namespaced: true,
} as const;

export interface Tenant extends KubeObject {
  spec?: { description?: string };
  status?: { cidr?: string; message?: string };
}

/** The Tenant CRD (kubectl apply it, or install it as the test does). */
export const tenantCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${tenantResource.plural}.${tenantResource.group}` },
  spec: {
    group: tenantResource.group,
    scope: "Namespaced",
    names: { kind: "Tenant", listKind: "TenantList", plural: "tenants", singular: "tenant" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", properties: { description: { type: "string" } } },
              status: {
                type: "object",
                properties: { cidr: { type: "string" }, message: { type: "string" } },
              },
            },
          },
        },
        additionalPrinterColumns: [{ name: "CIDR", type: "string", jsonPath: ".status.cidr" }],
      },
    ],
  },
};

const FINALIZER = "example.kubipam.dev/address";
const TENANT_LABEL = "example.kubipam.dev/tenant";

export interface TenantOperatorOptions {
  client: KubeClient;
  /** Where the /28s come from. */
  range: RangeRef;
  /** Stops the operator. */
  signal: AbortSignal;
  /** Watch one namespace (default: all). */
  namespace?: string;
  /** How long one reconcile waits for an address before writing "waiting" (default 30 s). */
  waitMs?: number;
  /** Default: log to stderr. */
  onError?: (key: string, err: unknown) => void;
}

const logError = (key: string, err: unknown) => console.error(`tenant ${key}: ${String(err)}`);

/** Runs until `signal` aborts. */
export async function runTenantOperator(o: TenantOperatorOptions): Promise<void> {
  const running = new Map<string, Promise<void>>();
  const again = new Set<string>();
  // One reconcile per tenant at a time; an event during one runs it once more afterwards.
  const schedule = (namespace: string | undefined, name: string | undefined) => {
    if (!namespace || !name || o.signal.aborted) return;
    const key = `${namespace}/${name}`;
    if (running.has(key)) {
      again.add(key);
      return;
    }
    const run = async () => {
      do {
        again.delete(key);
        await reconcile(o, namespace, name).catch((err) => {
          if (!o.signal.aborted) (o.onError ?? logError)(key, err);
        });
      } while (again.has(key) && !o.signal.aborted);
      running.delete(key);
    };
    running.set(key, run());
  };
  const watchOptions = { client: o.client, namespace: o.namespace, signal: o.signal };
  await Promise.all([
    (async () => {
      for await (const { object } of watchObjects<Tenant>(tenantResource, watchOptions)) {
        schedule(object.metadata.namespace, object.metadata.name);
      }
    })(),
    (async () => {
      for await (const { object } of watchRequests({ ...watchOptions, labelSelector: TENANT_LABEL })) {
        schedule(object.metadata.namespace, object.metadata.labels?.[TENANT_LABEL]);
      }
    })(),
  ]);
  await Promise.all(running.values());
}

async function reconcile(o: TenantOperatorOptions, namespace: string, name: string): Promise<void> {
  const { client, signal } = o;
  let tenant: Tenant;
  try {
    tenant = await client.get<Tenant>(tenantResource, name, { namespace, signal });
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  const requestName = `tenant-${name}`;
  const finalizers = tenant.metadata.finalizers ?? [];
  // Writes carry the resourceVersion read above: a stale write fails (409) and the next event retries.
  const setFinalizers = (list: string[]) =>
    client.patch<Tenant>(
      tenantResource,
      name,
      { metadata: { finalizers: list, resourceVersion: tenant.metadata.resourceVersion } },
      { namespace, signal },
    );

  if (tenant.metadata.deletionTimestamp) {
    if (!finalizers.includes(FINALIZER)) return;
    await releaseAddress({ client, namespace, name: requestName, wait: true, signal });
    await setFinalizers(finalizers.filter((f) => f !== FINALIZER)).catch(ignoreConflict);
    return;
  }
  if (!finalizers.includes(FINALIZER)) tenant = await setFinalizers([...finalizers, FINALIZER]);
  if (tenant.status?.cidr) return;

  let status: NonNullable<Tenant["status"]>;
  try {
    const { cidr } = await requestAddress({
      client,
      namespace,
      name: requestName,
      range: o.range,
      size: 28,
      labels: { [TENANT_LABEL]: name },
      ownerReference: ownerReferenceTo(tenant),
      signal,
      timeoutMs: o.waitMs ?? 30_000,
    });
    status = { cidr, message: "" };
  } catch (err) {
    if (!(err instanceof AddressRequestError) || err.code === "Aborted") throw err;
    // Timeout: still Busy, the request keeps its place. Invalid, SpecMismatch…: the message says why.
    status = {
      message: err.code === "Timeout" ? `waiting for space: ${err.statusMessage ?? ""}` : err.message,
    };
  }
  if (status.cidr === tenant.status?.cidr && status.message === tenant.status?.message) return;
  await client
    .patchStatus(
      tenantResource,
      name,
      { metadata: { resourceVersion: tenant.metadata.resourceVersion }, status },
      { namespace, signal },
    )
    .catch(ignoreConflict);
}

function ignoreConflict(err: unknown): void {
  if (!isConflict(err) && !isNotFound(err)) throw err;
}
