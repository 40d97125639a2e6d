// Options of the end-to-end benchmark (argv `--name=value` or environment; listed in bench/e2e.ts)
// and its progress log.

import { fileURLToPath } from "node:url";

function option(name: string, env: string, fallback: string): string {
  for (const arg of process.argv.slice(2)) {
    if (arg === `--${name}`) return "1";
    if (arg === `--no-${name}`) return "0";
    if (arg.startsWith(`--${name}=`)) return arg.slice(name.length + 3);
  }
  return process.env[env] ?? fallback;
}

function intOption(name: string, env: string, fallback: number): number {
  const value = Number(option(name, env, String(fallback)));
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name}: a positive integer, not ${value}`);
  return value;
}

export const N = intOption("n", "BENCH_N", 10_000);
export const WORKERS = intOption("workers", "BENCH_WORKERS", 8);
export const CONCURRENCY = intOption("concurrency", "BENCH_CONCURRENCY", 16);
export const BASELINE = option("baseline", "BENCH_BASELINE", "1") !== "0";
export const RESTART = option("restart", "BENCH_RESTART", "1") !== "0";
export const CPU_PROF = option("cpu-prof", "BENCH_CPU_PROF", "");
export const JSON_OUT = option("json", "BENCH_JSON", "");
export const TIMEOUT_S = intOption("timeout", "BENCH_TIMEOUT_S", 1200);
export const CONTROLLER_MAIN = option("controller-main", "BENCH_CONTROLLER_MAIN", "");
export const LEADER_ELECT = option("leader-elect", "BENCH_LEADER_ELECT", "1") !== "0";
/** Extra flags for the controller's node (space-separated), e.g. to compare V8 heap settings. */
export const NODE_FLAGS = option("node-flags", "BENCH_NODE_FLAGS", "")
  .split(" ")
  .filter((f) => f !== "");
export const MODE = option("controller", "BENCH_CONTROLLER", "dist");
if (MODE !== "dist" && MODE !== "tsx") throw new Error(`--controller: dist or tsx, not ${MODE}`);
if (MODE === "tsx" && CPU_PROF) throw new Error("--cpu-prof needs --controller=dist");

export const root = fileURLToPath(new URL("..", import.meta.url));

/** Per-phase wait for all N Ready: generous, so a slow machine gives a figure rather than a timeout. */
export const ALL_READY_TIMEOUT_MS = 120_000 + N * 30;

export function log(message: string): void {
  process.stderr.write(`bench:e2e ${new Date().toISOString().slice(11, 23)} ${message}\n`);
}
