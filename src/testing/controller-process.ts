// The controller as a separate OS process (`kubipam controller`), for crash, concurrency and
// failover scenarios. Children are killed when the test process exits.

import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export interface ControllerProcess {
  readonly child: ChildProcess;
  readonly identity: string;
  /** Everything the process wrote to stderr so far (its JSON log). */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface SpawnOptions {
  /** A compiled `cli/main.js` to run with plain node (default: src/cli/main.ts through tsx). */
  main?: string;
  /** Flags for node itself (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /**
   * `test` (default): short leases and the allocation fence in kube-system, so a killed holder is
   * replaced quickly. `product`: the controller's own defaults and PRODUCT_NODE_FLAGS, as the image
   * runs it (benchmarks).
   */
  defaults?: "test" | "product";
}

/**
 * Flags the product gives node (the image's ENTRYPOINT, `npm start`; test/unit/node-flags.test.ts keeps
 * them equal): V8's small-heap mode — a 1 MB young generation instead of up to 3 × 16 MB, and an old
 * generation that grows in smaller steps. Measured in docs/benchmarks.md ("Memory").
 */
export const PRODUCT_NODE_FLAGS: readonly string[] = ["--optimize-for-size"];

// Short leases (also the allocation fence's); extraArgs may override them (the last occurrence wins).
const TEST_DEFAULTS = [
  "--allocation-fence-namespace",
  "kube-system",
  "--leader-elect-lease-duration",
  "4",
  "--leader-elect-renew-deadline",
  "3",
  "--leader-elect-retry-period",
  "0.5",
];

/** Starts `kubipam controller` with JSON logs, metrics and probes off (unless `extraArgs` say otherwise). */
export function spawnController(
  kubeconfigPath: string,
  identity: string,
  extraArgs: string[] = [],
  options: SpawnOptions = {},
): ControllerProcess {
  const entry = options.main ? [options.main] : ["--import", "tsx", join(root, "src/cli/main.ts")];
  const product = options.defaults === "product";
  const child = spawn(
    process.execPath,
    [
      ...(product ? PRODUCT_NODE_FLAGS : []),
      ...(options.nodeArgs ?? []),
      ...entry,
      "controller",
      "--kubeconfig",
      kubeconfigPath,
      "--metrics-bind-address",
      "0",
      "--health-probe-bind-address",
      "0",
      "--log-format",
      "json",
      "--log-level",
      "info",
      ...(product ? [] : TEST_DEFAULTS),
      ...extraArgs,
    ],
    {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, POD_NAME: identity, HOSTNAME: identity },
    },
  );
  live.add(child);
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
    if (log.length > 4_000_000) log = log.slice(-2_000_000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      live.delete(child);
      resolve(code);
    });
  });
  return {
    child,
    identity,
    output: () => log,
    kill: async (signal: NodeJS.Signals = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** The controller processes of one test file, and how to start one into it. */
export interface ControllerPool {
  readonly processes: ControllerProcess[];
  /**
   * Spawns a controller. With `test`, it is SIGKILLed when that test ends, passed or not, so a failed
   * scenario leaves nothing running (holding the allocation fence) into the next one.
   */
  start(
    kubeconfigPath: string,
    identity: string,
    options?: { args?: string[]; test?: Pick<TestContext, "after"> },
  ): ControllerProcess;
}

/**
 * The controller processes of one test file: all are SIGKILLed after the file, and with
 * KUBIPAM_TEST_DUMP=<dir> each one's log is kept there for diagnosis.
 */
export function controllerPool(): ControllerPool {
  const processes: ControllerProcess[] = [];
  after(async () => {
    await Promise.all(processes.map((p) => p.kill("SIGKILL")));
    const dump = process.env.KUBIPAM_TEST_DUMP;
    if (dump) for (const p of processes) writeFileSync(`${dump}/controller-${p.identity}.log`, p.output());
  });
  return {
    processes,
    start: (kubeconfigPath, identity, options = {}) => {
      const p = spawnController(kubeconfigPath, identity, options.args ?? []);
      processes.push(p);
      options.test?.after(async () => {
        await p.kill("SIGKILL");
      });
      return p;
    },
  };
}
