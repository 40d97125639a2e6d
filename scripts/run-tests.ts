// The test runner behind `npm test`: one real control plane for the whole run.
//
//   1. resolveBinDir finds, downloads or builds etcd and kube-apiserver (src/cli/control-plane/
//      binaries.ts), like `npm start` (a machine with neither Go nor the binaries downloads them once;
//      .ci/run sets KUBIPAM_ENVTEST_INDEX=off); the test files themselves never download (`off`);
//   2. scripts/cluster-api-crds.sh generates (or finds cached) the real Cluster API CRDs, handed to
//      the tests as KUBIPAM_CLUSTER_API_CRDS (tests install them where they need them);
//   3. one LocalControlPlane starts, with the project's CRDs (src/api/crds.ts) installed;
//   4. `node --import tsx --test <files>` runs with KUBIPAM_TEST_KUBECONFIG, KUBIPAM_BIN_DIR and
//      KUBIPAM_TEST_TMPDIR set (test/harness connects to that control plane);
//   5. the control plane stops, whatever happened; the exit code is the test run's.
//
// Usage: tsx scripts/run-tests.ts [node --test options…] [test files…]
// Without files: every *.test.ts in test/unit, test/property, test/integration and test/faults. The
// control plane starts only when an integration or fault test is among the files.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { constants } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  LocalControlPlane,
  loadProjectCrds,
  resolveBinDir,
  resolveClusterApiCrdsDir,
} from "../src/cli/control-plane/index.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const TEST_DIRS = ["test/unit", "test/property", "test/integration", "test/faults"];

function log(message: string): void {
  process.stderr.write(`run-tests: ${message}\n`);
}

function discoverTestFiles(): string[] {
  const files: string[] = [];
  for (const dir of TEST_DIRS) {
    const absolute = join(root, dir);
    if (!existsSync(absolute)) continue;
    for (const entry of readdirSync(absolute, { withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith(".test.ts")) files.push(join(dir, entry.name));
    }
  }
  return files.sort();
}

function runNodeTest(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--test", ...args], {
      cwd: root,
      stdio: "inherit",
      env,
    });
    const forward = (signal: NodeJS.Signals): void => {
      if (child.exitCode === null) child.kill(signal);
    };
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      if (signal) resolvePromise(128 + (constants.signals[signal] ?? 0));
      else resolvePromise(code ?? 1);
    });
  });
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const options = argv.filter((arg) => arg.startsWith("-"));
  const given = argv.filter((arg) => !arg.startsWith("-")).map((file) => relative(root, resolve(file)));
  const files = given.length > 0 ? given : discoverTestFiles();
  if (files.length === 0) {
    log(`no test files in ${TEST_DIRS.join(", ")}`);
    return 1;
  }
  const needsControlPlane = files.some(
    (file) => file.startsWith("test/integration/") || file.startsWith("test/faults/"),
  );
  const testEnv = { ...process.env, KUBIPAM_ENVTEST_INDEX: process.env.KUBIPAM_ENVTEST_INDEX || "off" };
  if (!needsControlPlane) return runNodeTest([...options, ...files], testEnv);

  // Until the control plane is up, a signal just ends the run (LocalControlPlane cleans up itself).
  const binDir = await resolveBinDir(process.env);
  const clusterApiCrds = await resolveClusterApiCrdsDir(process.env).catch((error: unknown) => {
    // Only the Cluster API tests need them; they fail with this message, the rest runs.
    log(`no Cluster API CRDs: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  });
  const started = Date.now();
  const controlPlane = await LocalControlPlane.start({ binDir, handleSignals: false });
  // From here on the signals go to the test run; the control plane is stopped below.
  const ignore = (): void => {};
  process.on("SIGINT", ignore);
  process.on("SIGTERM", ignore);
  try {
    log(
      `control plane ${controlPlane.version} ready at ${controlPlane.server} in ${Date.now() - started} ms`,
    );
    const crds = await loadProjectCrds();
    if (crds) {
      await controlPlane.installCrds(crds);
      log(`installed ${crds.length} project CRDs`);
    } else {
      log("src/api/crds.ts not found: no project CRDs installed");
    }
    const tmpDir = join(controlPlane.dir, "tests");
    mkdirSync(tmpDir);
    // Controllers under test watch every namespace: one file at a time shares the cluster safely.
    const serial = options.some((o) => o.startsWith("--test-concurrency")) ? [] : ["--test-concurrency=1"];
    return await runNodeTest([...serial, ...options, ...files], {
      ...testEnv,
      KUBIPAM_TEST_KUBECONFIG: controlPlane.kubeconfigPath,
      KUBIPAM_BIN_DIR: binDir,
      KUBIPAM_TEST_TMPDIR: tmpDir,
      ...(clusterApiCrds ? { KUBIPAM_CLUSTER_API_CRDS: clusterApiCrds } : {}),
    });
  } finally {
    await controlPlane.stop();
    process.off("SIGINT", ignore);
    process.off("SIGTERM", ignore);
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
}
