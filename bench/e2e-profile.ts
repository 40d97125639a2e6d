/**
 * Summarises a V8 CPU profile (`.cpuprofile`, as written by `npm run bench:e2e -- --cpu-prof=<dir>`):
 * self time per function and per source file or package, and inclusive time of the functions named on
 * the command line.
 *
 *   tsx bench/e2e-profile.ts <file.cpuprofile> [--top=30] [--inclusive=reconcileRequest,JSON.parse]
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const file = process.argv[2];
if (!file) {
  console.error("usage: tsx bench/e2e-profile.ts <file.cpuprofile> [--top=30] [--inclusive=a,b]");
  process.exit(2);
}
const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const top = Number(arg("top") ?? "30");
const inclusiveNames = (arg("inclusive") ?? "").split(",").filter(Boolean);

const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Self time per node (µs): each sample's delta goes to the node sampled.
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);

/** `node_modules/<package>` or the path below the project (`src/…`, `dist/…`), or a V8 category. */
function place(frame: CallFrame): string {
  const url = frame.url;
  if (url === "") return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return `npm:${rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith("node:")) return url;
  const m = /\/(dist|src)\/(.*)$/.exec(url);
  return m ? `${m[1]}/${m[2]}` : url;
}

const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;

const perFunction = new Map<string, number>();
const perPlace = new Map<string, number>();
for (const [id, us] of self) {
  const frame = byId.get(id)?.callFrame;
  if (!frame) continue;
  const fn = `${frame.functionName || "(anonymous)"} ${place(frame)}:${frame.lineNumber + 1}`;
  perFunction.set(fn, (perFunction.get(fn) ?? 0) + us);
  perPlace.set(place(frame), (perPlace.get(place(frame)) ?? 0) + us);
}

console.log(
  `${file}: ${(total / 1e6).toFixed(2)} s sampled over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`,
);
console.log("\nself time by source file / package:");
for (const [k, us] of [...perPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${ms(us)} ${pct(us)}  ${k}`);
}
console.log("\nself time by function:");
for (const [k, us] of [...perFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${ms(us)} ${pct(us)}  ${k}`);
}

if (inclusiveNames.length > 0) {
  // Inclusive time: a sample counts for a name if any frame on its stack has that function name.
  console.log("\ninclusive time (any frame on the stack):");
  const stackHas = new Map<number, Set<string>>();
  const namesOn = (id: number): Set<string> => {
    const cached = stackHas.get(id);
    if (cached) return cached;
    const names = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const fn = byId.get(cur)?.callFrame.functionName ?? "";
      if (inclusiveNames.includes(fn)) names.add(fn);
    }
    stackHas.set(id, names);
    return names;
  };
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) for (const n of namesOn(id)) inclusive.set(n, (inclusive.get(n) ?? 0) + us);
  for (const n of inclusiveNames)
    console.log(`  ${ms(inclusive.get(n) ?? 0)} ${pct(inclusive.get(n) ?? 0)}  ${n}`);
}
