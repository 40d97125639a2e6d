// The real Cluster API CRDs kubipam's provider serves (IPAddressClaim, IPAddress) and reads (Cluster),
// generated with controller-gen from Cluster API's own Go types by scripts/cluster-api-crds.sh and
// cached. Used by the tests and by `kubipam start --with-cluster-api`; the controller itself never
// installs them (Cluster API does, in a real cluster).

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Manifest, parseManifests } from "./manifests.ts";
import { scriptFolder } from "./script-folder.ts";

/** scripts/cluster-api-crds.sh of this package. */
export const clusterApiCrdsScript = fileURLToPath(
  new URL("../../../scripts/cluster-api-crds.sh", import.meta.url),
);

/** The files the script leaves in its folder, one CRD each. */
export const CLUSTER_API_CRD_FILES = [
  "ipam.cluster.x-k8s.io_ipaddressclaims.yaml",
  "ipam.cluster.x-k8s.io_ipaddresses.yaml",
  "cluster.x-k8s.io_clusters.yaml",
] as const;

/**
 * The folder holding the generated CRDs: `$KUBIPAM_CLUSTER_API_CRDS` when set and complete, else the
 * cache, else generated (needs Go; about a minute cold). Progress goes to stderr.
 */
export function resolveClusterApiCrdsDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return scriptFolder(clusterApiCrdsScript, env);
}

/** The three CRD manifests (IPAddressClaim, IPAddress, Cluster), generated or cached. */
export async function loadClusterApiCrds(env: NodeJS.ProcessEnv = process.env): Promise<Manifest[]> {
  const dir = await resolveClusterApiCrdsDir(env);
  const manifests: Manifest[] = [];
  for (const file of CLUSTER_API_CRD_FILES) {
    const found = parseManifests(await readFile(join(dir, file), "utf8"));
    if (found.length !== 1 || found[0]?.kind !== "CustomResourceDefinition") {
      throw new Error(`${join(dir, file)} does not hold exactly one CustomResourceDefinition`);
    }
    manifests.push(...found);
  }
  return manifests;
}
