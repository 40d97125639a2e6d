import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CoreTypes, type KubeClient } from "../../runtime/kube.ts";
import { pollUntil } from "../../runtime/util.ts";
import { ResourceDiscovery } from "./discovery.ts";
import { type Manifest, parseManifests } from "./manifests.ts";

export const FIELD_MANAGER = "kubipam";

interface Crd extends Manifest {
  status?: { conditions?: { type?: string; status?: string; message?: string }[] };
  spec?: { group?: string; versions?: { name?: string; served?: boolean }[]; names?: { kind?: string } };
}

/**
 * Applies CustomResourceDefinitions (server-side apply) and waits until each is Established and its
 * served versions appear in discovery and answer a list, so that custom resources can be used right
 * away.
 */
export async function installCrds(
  client: KubeClient,
  manifests: string | object | readonly object[],
  options: { timeoutMs?: number } = {},
): Promise<Manifest[]> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const crds = parseManifests(manifests);
  for (const crd of crds) {
    if (crd.kind !== "CustomResourceDefinition") {
      throw new Error(
        `installCrds takes CustomResourceDefinitions only, got ${crd.kind} ${crd.metadata.name}`,
      );
    }
  }
  const applied: Manifest[] = [];
  for (const crd of crds) {
    applied.push(
      await client.apply(CoreTypes.customResourceDefinition, crd, {
        fieldManager: FIELD_MANAGER,
        force: true,
      }),
    );
  }
  const discovery = new ResourceDiscovery(client);
  for (const crd of crds) {
    const name = crd.metadata.name ?? "";
    await pollUntil(
      async () => {
        const current = await client.get<Crd>(CoreTypes.customResourceDefinition, name);
        const established = current.status?.conditions?.find((c) => c.type === "Established");
        return established?.status === "True" ? true : undefined;
      },
      { timeoutMs, description: `CRD ${name} to be Established` },
    );
    const spec = (crd as Crd).spec;
    const kind = spec?.names?.kind;
    for (const version of spec?.versions ?? []) {
      if (!version.served || !spec?.group || !version.name || !kind) continue;
      const apiVersion = `${spec.group}/${version.name}`;
      const resource = await pollUntil(async () => discovery.resourceFor(apiVersion, kind), {
        timeoutMs,
        description: `${kind} in ${apiVersion} to appear in discovery`,
      });
      // Right after Established, requests can still get 429 "storage is (re)initializing" while
      // the new resource's watch cache fills; a successful list means it is ready. (A raw request:
      // the typed list would itself wait out the 429s.)
      await pollUntil(
        async () => {
          const response = await client.raw("GET", client.resourcePath(resource), { query: { limit: 1 } });
          if (response.status === 200) return true;
          throw new Error(`list answered ${response.status}: ${response.text.slice(0, 200)}`);
        },
        { timeoutMs, description: `${kind} in ${apiVersion} to be served` },
      );
    }
  }
  return applied;
}

/**
 * The project's CRDs from `src/api/crds.ts` (`crdManifests()`), or `undefined` while that module does
 * not exist yet. Loaded dynamically so that this package builds and runs without it.
 */
export async function loadProjectCrds(): Promise<object[] | undefined> {
  for (const candidate of ["../../api/crds.ts", "../../api/crds.js"]) {
    const url = new URL(candidate, import.meta.url);
    if (!existsSync(fileURLToPath(url))) continue;
    const module: unknown = await import(url.href);
    const crdManifests =
      typeof module === "object" && module !== null && "crdManifests" in module
        ? module.crdManifests
        : undefined;
    if (typeof crdManifests !== "function") {
      throw new Error(`${fileURLToPath(url)} does not export crdManifests()`);
    }
    const manifests: unknown = await crdManifests();
    if (!Array.isArray(manifests)) throw new Error("crdManifests() did not return an array");
    return manifests as object[];
  }
  return undefined;
}
