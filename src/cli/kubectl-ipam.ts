#!/usr/bin/env node
// kubectl-ipam: the `kubectl ipam` plugin. Reads ranges, requests and allocation objects with the
// user's kubeconfig and shows usage, holders and inconsistencies. Strictly read-only. The pure logic
// lives in ./views/; this file does the I/O.
//
// Exit status: 0 success, 1 `check` found problems, 2 error (bad usage, API errors).

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { stringify } from "yaml";
import {
  CLUSTER_RANGE_KIND,
  DEFAULT_CLUSTER_ALLOCATION_NAMESPACE,
  type PoolRef,
  poolKey,
  poolOfObject,
} from "../api/pool-ref.ts";
import {
  type IPAMAllocation,
  type IPAMRange,
  type IPAMRequest,
  ipamAllocationResource,
  ipamRangeResource,
  ipamRequestResource,
  type RangeObject,
} from "../api/types.ts";
import { isInvalid, rangeRefOf } from "../api/validation.ts";
import { ApiError, KubeClient, loadKubeConfig } from "../runtime/kube.ts";
import {
  clusterRecords,
  listClusterRanges,
  poolRecords,
  RangeNotFound,
  resolveRange,
} from "./kubectl-ipam-ranges.ts";
import { getRequest, listIn, requestsFor } from "./kubectl-ipam-reads.ts";
import { runUi, UiFlagError, type UiFlags } from "./ui/command.ts";
import {
  findingsData,
  findProblems,
  problemCount,
  qualified,
  renderFindings,
  renderShow,
  renderUsage,
  showData,
  showRange,
  usageData,
  usageRows,
} from "./views/index.ts";

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

type Output = "table" | "wide" | "json" | "yaml";

interface GlobalOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output?: "json" | "yaml" | "wide";
  clusterAllocationNamespace?: string;
}

/** Where to look: one namespace, or all of them (and where cluster ranges' records live). */
interface Scope {
  all: boolean;
  namespace: string;
  clusterNs: string;
}

class UserError extends Error {}

const EXIT_OK = 0;
const EXIT_PROBLEMS = 1;
const EXIT_ERROR = 2;

async function connect(options: GlobalOptions): Promise<{ client: KubeClient; scope: Scope }> {
  const kubeConfig = await loadKubeConfig(options.kubeconfig, options.context);
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  const namespace = options.namespace || context?.namespace || "default";
  const client = new KubeClient(kubeConfig, { userAgent: "kubectl-ipam/0.1.0" });
  const clusterNs = options.clusterAllocationNamespace || DEFAULT_CLUSTER_ALLOCATION_NAMESPACE;
  return { client, scope: { all: options.allNamespaces === true, namespace, clusterNs } };
}

function outputOf(options: GlobalOptions): Output {
  return options.output ?? "table";
}

function emitData(io: Io, output: Output, data: unknown): void {
  if (output === "json") io.stdout(`${JSON.stringify(data, null, 2)}\n`);
  else io.stdout(stringify(data, { lineWidth: 0 }));
}

/** The range a request refers to, if it exists (a request's reference may name either kind). */
async function getPool(client: KubeClient, ref: PoolRef): Promise<RangeObject | undefined> {
  try {
    return await resolveRange(client, ref.namespace, `${ref.kind}/${ref.name}`);
  } catch (err) {
    if (err instanceof RangeNotFound) return undefined;
    throw err;
  }
}

/** A range argument, or a UserError saying what was not found. */
async function rangeArg(client: KubeClient, scope: Scope, arg: string): Promise<RangeObject> {
  try {
    return await resolveRange(client, scope.namespace, arg);
  } catch (err) {
    if (err instanceof RangeNotFound) throw new UserError(err.message);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------- usage

async function usageCommand(io: Io, options: GlobalOptions, rangeName: string | undefined): Promise<number> {
  const { client, scope } = await connect(options);
  try {
    const warn = (text: string) => io.stderr(text);
    let ranges: RangeObject[];
    let allocations: IPAMAllocation[];
    if (rangeName) {
      const range = await rangeArg(client, scope, rangeName);
      ranges = [range];
      allocations = await poolRecords(client, poolOfObject(range), scope.clusterNs, warn);
    } else {
      // Cluster ranges belong to every namespace's view: they are listed with the namespace's own.
      const [own, cluster, records] = await Promise.all([
        listIn<IPAMRange>(client, ipamRangeResource, scope),
        listClusterRanges(client, warn),
        listIn<IPAMAllocation>(client, ipamAllocationResource, scope),
      ]);
      const clusterOnes =
        cluster.length > 0 && !scope.all && scope.namespace !== scope.clusterNs
          ? await clusterRecords(client, scope.clusterNs, warn)
          : [];
      ranges = [...own.map((r): RangeObject => ({ ...r, kind: "IPAMRange" })), ...cluster];
      allocations = [...records, ...clusterOnes];
    }
    const rows = usageRows(ranges, allocations, scope.clusterNs);
    const output = outputOf(options);
    if (output === "json" || output === "yaml") {
      emitData(io, output, usageData(rows));
      return EXIT_OK;
    }
    if (rows.length === 0) {
      io.stderr(
        scope.all
          ? "No IPAMRanges or ClusterIPAMRanges found.\n"
          : `No IPAMRanges found in ${scope.namespace} namespace, and no ClusterIPAMRanges.\n`,
      );
      return EXIT_OK;
    }
    io.stdout(renderUsage(rows, { namespaces: scope.all && !rangeName, wide: output === "wide" }));
    return EXIT_OK;
  } finally {
    client.close();
  }
}

// ----------------------------------------------------------------------------------------------- show

async function showCommand(io: Io, options: GlobalOptions, rangeName: string): Promise<number> {
  const { client, scope } = await connect(options);
  try {
    const range = await rangeArg(client, scope, rangeName);
    const allocations = await poolRecords(client, poolOfObject(range), scope.clusterNs, (t) => io.stderr(t));
    const requests = await requestsFor((t) => io.stderr(t), client, range, allocations);
    const view = showRange(range, allocations, requests);
    const output = outputOf(options);
    if (output === "json" || output === "yaml") emitData(io, output, showData(view));
    else io.stdout(renderShow(view, { wide: output === "wide", maxFreeBlocks: output === "wide" ? 0 : 50 }));
    return EXIT_OK;
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------- check

async function checkCommand(io: Io, options: GlobalOptions): Promise<number> {
  const { client, scope } = await connect(options);
  try {
    const warn = (text: string) => io.stderr(text);
    const [own, cluster, allocations, requests] = await Promise.all([
      listIn<IPAMRange>(client, ipamRangeResource, scope),
      scope.all ? listClusterRanges(client, warn) : Promise.resolve([]),
      listIn<IPAMAllocation>(client, ipamAllocationResource, scope),
      listIn<IPAMRequest>(client, ipamRequestResource, scope),
    ]);
    const ranges: RangeObject[] = [...own.map((r): RangeObject => ({ ...r, kind: "IPAMRange" })), ...cluster];
    if (!scope.all) {
      // Objects in other namespaces that objects here refer to (cross-namespace ranges).
      const requestKeys = new Set(requests.map((r) => qualified(r.metadata.namespace, r.metadata.name)));
      for (const a of allocations) {
        const ref = a.spec?.request;
        if (!ref || ref.namespace === scope.namespace) continue;
        const key = qualified(ref.namespace, ref.name);
        if (requestKeys.has(key)) continue;
        requestKeys.add(key);
        const request = await getRequest(client, ref.namespace, ref.name);
        if (request) requests.push(request);
      }
      const rangeKeys = new Set(ranges.map((r) => poolKey(poolOfObject(r))));
      for (const r of [...requests]) {
        if (!r.status?.cidr) continue;
        const ref = rangeRefOf(r);
        if (isInvalid(ref) || (ref.kind !== CLUSTER_RANGE_KIND && ref.namespace === scope.namespace))
          continue;
        const key = poolKey(ref);
        if (rangeKeys.has(key)) continue;
        rangeKeys.add(key);
        const range = await getPool(client, ref);
        if (!range) continue;
        ranges.push(range);
        allocations.push(...(await poolRecords(client, ref, scope.clusterNs, warn)));
      }
    }
    const clusterAllocationNamespace = scope.clusterNs;
    let findings = findProblems({ ranges, allocations, requests, clusterAllocationNamespace });
    // Objects fetched from other namespaces only serve as references: report on this namespace only.
    if (!scope.all) findings = findings.filter((f) => f.namespace === scope.namespace);
    const output = outputOf(options);
    if (output === "json" || output === "yaml") emitData(io, output, findingsData(findings));
    else io.stdout(renderFindings(findings));
    return problemCount(findings) > 0 ? EXIT_PROBLEMS : EXIT_OK;
  } finally {
    client.close();
  }
}

// ------------------------------------------------------------------------------------------------ CLI

function program(io: Io, done: (code: number) => void): Command {
  const root = new Command("kubectl-ipam")
    .description(
      "Inspect kubipam IP address management: usage of IPAMRanges and ClusterIPAMRanges, who holds which block, consistency.\n" +
        "Read-only. Exit status: 0 ok, 1 `check` found problems, 2 error.",
    )
    .option("--kubeconfig <path>", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    .option("--context <name>", "the kubeconfig context to use")
    .option("-n, --namespace <namespace>", "namespace (default: the context's, else default)")
    .option("-A, --all-namespaces", "all namespaces")
    .addOption(new Option("-o, --output <format>", "output format").choices(["json", "yaml", "wide"]))
    .option(
      "--cluster-allocation-namespace <ns>",
      "where the controller keeps the records of ClusterIPAMRanges (its flag of that name)",
      DEFAULT_CLUSTER_ALLOCATION_NAMESPACE,
    )
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });

  root
    .command("usage")
    .description("per range: size, allocated, free, percent used (exact, also for IPv6)")
    .argument(
      "[range]",
      "only this range: an IPAMRange (in the namespace given by -n) or a ClusterIPAMRange by name; ciprange/<name> or iprange/<name> say which",
    )
    .action(async (rangeName: string | undefined, _opts: unknown, cmd: Command) => {
      done(await usageCommand(io, cmd.optsWithGlobals<GlobalOptions>(), rangeName));
    });

  root
    .command("show")
    .description(
      "one range: which request holds which block, free blocks, pending removals, waiting requests",
    )
    .argument(
      "<range>",
      "an IPAMRange (in the namespace given by -n) or a ClusterIPAMRange by name; ciprange/<name> or iprange/<name> say which",
    )
    .action(async (rangeName: string, _opts: unknown, cmd: Command) => {
      done(await showCommand(io, cmd.optsWithGlobals<GlobalOptions>(), rangeName));
    });

  root
    .command("check")
    .description(
      "find overlapping allocations, allocations without a live request, requests whose CIDR has no " +
        "allocation object or lies outside their range; exit status 1 when there are any (warnings " +
        "alone — blocks held over an exclusion, unreadable status.cooling entries — exit 0)",
    )
    .action(async (_opts: unknown, cmd: Command) => {
      done(await checkCommand(io, cmd.optsWithGlobals<GlobalOptions>()));
    });
  root
    .command("ui")
    .description(
      "a live address map in the browser: all ranges, each pool drawn to scale with its holders, " +
        "following changes (read-only; serves on 127.0.0.1 until Ctrl-C)",
    )
    .option("--port <port>", "port to serve on (default: a free port, printed)")
    .option(
      "--address <address>",
      "address to serve on (default 127.0.0.1; anything else is reachable by others)",
    )
    .option("--no-open", "do not open a browser")
    .action(async (_opts: unknown, cmd: Command) => {
      const options = cmd.optsWithGlobals<GlobalOptions & UiFlags>();
      const { client, scope } = await connect(options);
      try {
        done(await runUi(io, client, scope, options));
      } finally {
        client.close();
      }
    });
  return root;
}

/** Runs the plugin with `argv` (without node and script) and returns the exit status. */
export async function run(argv: readonly string[], io: Io = processIo): Promise<number> {
  let code = EXIT_OK;
  const root = program(io, (c) => {
    code = c;
  });
  try {
    if (argv.length === 0) {
      root.outputHelp();
      return EXIT_ERROR;
    }
    await root.parseAsync([...argv], { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; commander has already printed its message.
      return err.exitCode === 0 ? EXIT_OK : EXIT_ERROR;
    }
    io.stderr(`error: ${errorText(err)}\n`);
    return EXIT_ERROR;
  }
}

function errorText(err: unknown): string {
  if (err instanceof UserError || err instanceof UiFlagError) return err.message;
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ECONNREFUSED") return `cannot reach the API server: ${err.message}`;
    return err.message;
  }
  return String(err);
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
