// The generated files in deploy/ are up to date, and deploy/kustomization.yaml lists every manifest.
// (Pure: no cluster needed.)

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { generatedManifests, ROOT, staleManifests } from "../../scripts/render-manifests.ts";

describe("deploy: generated files", () => {
  it("deploy/crds.yaml and the chart's CRDs match src/api/crds.ts (run `npm run manifests`)", () => {
    assert.deepEqual(
      staleManifests(),
      [],
      "stale generated manifests: run `npm run manifests` and commit them",
    );
    assert.ok(generatedManifests().size >= 2);
  });

  it("kustomization.yaml lists every manifest in deploy/", () => {
    const kustomization = parse(readFileSync(join(ROOT, "deploy", "kustomization.yaml"), "utf8")) as {
      resources?: string[];
    };
    const manifests = readdirSync(join(ROOT, "deploy"))
      .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
      .sort();
    assert.deepEqual([...(kustomization.resources ?? [])].sort(), manifests);
  });
});
