// The flags node runs the controller with are the same wherever it is launched as the product: the
// image's ENTRYPOINT (which the chart and the manifests use), `npm start`, and the benchmark's and
// tests' "product" launch (PRODUCT_NODE_FLAGS).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { PRODUCT_NODE_FLAGS } from "../../src/testing/controller-process.ts";

const root = new URL("../../", import.meta.url);

it("the image's ENTRYPOINT runs node with PRODUCT_NODE_FLAGS", () => {
  const dockerfile = readFileSync(new URL("Dockerfile", root), "utf8");
  const line = dockerfile.split("\n").find((l) => l.startsWith("ENTRYPOINT "));
  assert.ok(line, "the Dockerfile has an ENTRYPOINT");
  const entrypoint = JSON.parse(line.slice("ENTRYPOINT ".length)) as string[];
  assert.deepEqual(entrypoint, ["node", ...PRODUCT_NODE_FLAGS, "dist/cli/main.js"]);
});

it("npm start runs node with PRODUCT_NODE_FLAGS", () => {
  const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
    scripts: Record<string, string>;
  };
  assert.equal(pkg.scripts.start, `node ${PRODUCT_NODE_FLAGS.join(" ")} --import tsx src/cli/main.ts start`);
});

it("the chart and the manifests leave the image's command alone (args only)", () => {
  for (const file of ["deploy/deployment.yaml", "deploy/chart/templates/deployment.yaml"]) {
    const text = readFileSync(new URL(file, root), "utf8");
    assert.doesNotMatch(text, /^\s+command:/m, `${file} overrides the image's ENTRYPOINT`);
  }
});
