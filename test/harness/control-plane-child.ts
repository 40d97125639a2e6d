// Fixture for test/integration/control-plane.test.ts: starts a private control plane, prints
// {"pids": [...], "dir": "..."} on one line, then runs until it is killed — or, when it reads the
// line "throw" on stdin, dies of an uncaught exception.
import { createInterface } from "node:readline";
import { LocalControlPlane } from "../../src/cli/control-plane/index.ts";

const [binDir] = process.argv.slice(2);
if (!binDir) throw new Error("usage: control-plane-child.ts <binDir>");
const controlPlane = await LocalControlPlane.start({ binDir });
process.stdout.write(`${JSON.stringify({ pids: controlPlane.pids, dir: controlPlane.dir })}\n`);
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "throw") throw new Error("deliberate uncaught exception");
});
