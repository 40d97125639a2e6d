// Fixture for test/integration/control-plane.test.ts: starts a private control plane, prints
// {"pids": [...], "dir": "..."} on one line, then behaves as argv[2] says:
//   wait   — keeps running (the test kills it with SIGKILL or SIGTERM);
//   throw  — throws an uncaught exception.
import { LocalControlPlane } from "../../src/cli/control-plane/index.ts";

const [binDir, mode = "wait"] = process.argv.slice(2);
if (!binDir) throw new Error("usage: control-plane-child.ts <binDir> [wait|throw]");
const controlPlane = await LocalControlPlane.start({ binDir });
process.stdout.write(`${JSON.stringify({ pids: controlPlane.pids, dir: controlPlane.dir })}\n`);
if (mode === "throw") {
  setImmediate(() => {
    throw new Error("deliberate uncaught exception");
  });
}
