// The package's bash scripts that make or find a folder (control-plane binaries, Cluster API CRDs):
// progress on stderr (passed through), the folder as the last line of stdout.

import { spawn } from "node:child_process";

/** Runs `script` and resolves to the folder it printed last; rejects when it fails or prints none. */
export function scriptFolder(script: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "inherit"], env });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const dir = stdout.trim().split("\n").at(-1) ?? "";
      if (code === 0 && dir) resolve(dir);
      else reject(new Error(`${script} failed (exit code ${code}); see the message above`));
    });
  });
}
