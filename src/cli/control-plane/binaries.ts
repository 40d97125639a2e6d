import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** scripts/control-plane-binaries.sh of this package. */
export const binariesScript = fileURLToPath(
  new URL("../../../scripts/control-plane-binaries.sh", import.meta.url),
);

function hasBinaries(dir: string): boolean {
  return existsSync(join(dir, "etcd")) && existsSync(join(dir, "kube-apiserver"));
}

/**
 * The folder holding etcd, kube-apiserver and (when built here) kubectl: `$KUBIPAM_BIN_DIR` when it
 * has them, otherwise what scripts/control-plane-binaries.sh prints (`$KUBEBUILDER_ASSETS`, the cache,
 * or a fresh build from the Go module proxy; its progress goes to our stderr).
 */
export async function resolveBinDir(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const preset = env.KUBIPAM_BIN_DIR;
  if (preset && hasBinaries(preset)) return preset;
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [binariesScript], { stdio: ["ignore", "pipe", "inherit"], env });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const dir = stdout.trim().split("\n").at(-1) ?? "";
      if (code === 0 && dir && hasBinaries(dir)) resolve(dir);
      else reject(new Error(`${binariesScript} failed (exit code ${code}); see the message above`));
    });
  });
}
