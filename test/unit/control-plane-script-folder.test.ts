// scriptFolder: the folder a package script prints last on stdout; failures name the script.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { scriptFolder } from "../../src/cli/control-plane/script-folder.ts";

let dir: string;

async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `set -euo pipefail\n${body}\n`);
  return path;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "kubipam-script-folder-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("scriptFolder", () => {
  it("resolves to the last line of stdout; stderr is progress only", async () => {
    const path = await script("ok.sh", 'echo "building" >&2\necho "/some/where/else"\necho "/the/folder"');
    assert.equal(await scriptFolder(path, process.env), "/the/folder");
  });

  it("rejects with the script and its exit code when it fails, even after printing a folder", async () => {
    const path = await script("fails.sh", 'echo "/the/folder"\nexit 3');
    await assert.rejects(scriptFolder(path, process.env), {
      message: `${path} failed (exit code 3); see the message above`,
    });
  });

  it("rejects when it succeeds without printing a folder", async () => {
    const path = await script("silent.sh", "true");
    await assert.rejects(scriptFolder(path, process.env), {
      message: `${path} failed (exit code 0); see the message above`,
    });
  });

  it("passes the environment given", async () => {
    const path = await script("env.sh", 'echo "$KUBIPAM_TEST_FOLDER"');
    assert.equal(await scriptFolder(path, { ...process.env, KUBIPAM_TEST_FOLDER: "/from/env" }), "/from/env");
  });
});
