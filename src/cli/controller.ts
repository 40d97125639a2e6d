// `kubipam controller`: runs the IPAM controller against the cluster the kubeconfig names.

import { randomUUID } from "node:crypto";
import { Command, InvalidArgumentError, Option } from "commander";
import { addIpamControllers, DEFAULT_FENCE_NAME } from "../controllers/setup.ts";
import { loadKubeConfig } from "../runtime/kube.ts";
import { createLogger, isLogFormat, isLogLevel, type LogFormat, type LogLevel } from "../runtime/logger.ts";
import { LeaderElectionLostError, Manager, signalHandler } from "../runtime/manager.ts";
import { createRegistry } from "../runtime/metrics.ts";

export interface ControllerFlags {
  kubeconfig?: string;
  context?: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  /** Namespace of the allocation fence Lease; every writer of a cluster must use the same. */
  allocationFenceNamespace: string;
  allocationFenceName: string;
  /** Where the records of ClusterIPAMRanges live (default: the fence's namespace); shared like the fence. */
  clusterAllocationNamespace?: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  workers: number;
  /** A Normal `Allocated` event per allocation (low priority, shed first under load). */
  allocationEvents: boolean;
  logFormat: LogFormat;
  logLevel: LogLevel;
}

export const defaultControllerFlags: ControllerFlags = {
  leaderElect: false,
  leaderElectionNamespace: process.env.POD_NAMESPACE ?? "kube-system",
  leaderElectionId: "kubipam-controller",
  allocationFenceNamespace: "kube-system",
  allocationFenceName: DEFAULT_FENCE_NAME,
  leaseDurationSeconds: 15,
  renewDeadlineSeconds: 10,
  retryPeriodSeconds: 2,
  metricsBindAddress: ":8080",
  healthProbeBindAddress: ":8081",
  workers: 8,
  allocationEvents: true,
  logFormat: process.stderr.isTTY ? "text" : "json",
  logLevel: "info",
};

/**
 * Runs until `signal` aborts (graceful stop) and resolves; rejects if leadership is lost or the
 * caches never sync, so that the process exits and its supervisor restarts it.
 */
export async function runController(flags: ControllerFlags, signal: AbortSignal): Promise<void> {
  const logger = createLogger({ format: flags.logFormat, level: flags.logLevel, name: "kubipam" });
  const kubeConfig = await loadKubeConfig(flags.kubeconfig, flags.context);
  const manager = new Manager({
    kubeConfig,
    logger,
    registry: createRegistry({ defaultMetrics: true }),
    clientOptions: { userAgent: "kubipam-controller" },
    metricsBindAddress: flags.metricsBindAddress,
    healthProbeBindAddress: flags.healthProbeBindAddress,
    reportingController: "ipam.mandelsoft.org/kubipam",
    leaderElection: {
      // The pod's name (downward API) says which replica holds a lease; unique per process anyway.
      identity: process.env.POD_NAME ? `${process.env.POD_NAME}_${randomUUID()}` : undefined,
      enabled: flags.leaderElect,
      namespace: flags.leaderElectionNamespace,
      name: flags.leaderElectionId,
      releaseOnCancel: true,
      leaseDurationMs: flags.leaseDurationSeconds * 1000,
      renewDeadlineMs: flags.renewDeadlineSeconds * 1000,
      retryPeriodMs: flags.retryPeriodSeconds * 1000,
    },
  });
  addIpamControllers(manager, {
    workers: flags.workers,
    allocationEvents: flags.allocationEvents,
    clusterAllocationNamespace: flags.clusterAllocationNamespace || flags.allocationFenceNamespace,
    fence: {
      namespace: flags.allocationFenceNamespace,
      name: flags.allocationFenceName,
      leaseDurationMs: flags.leaseDurationSeconds * 1000,
      renewDeadlineMs: flags.renewDeadlineSeconds * 1000,
      retryPeriodMs: flags.retryPeriodSeconds * 1000,
    },
  });
  logger.info("starting controller", {
    server: kubeConfig.getCurrentCluster()?.server,
    leaderElect: flags.leaderElect,
    workers: flags.workers,
  });
  await manager.start(signal);
}

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
};

const booleanFlag = (value: string): boolean => {
  if (value === "true") return true;
  if (value === "false") return false;
  throw new InvalidArgumentError("must be true or false");
};

const positiveNumber = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a positive number");
  return n;
};

export function controllerCommand(): Command {
  const d = defaultControllerFlags;
  return new Command("controller")
    .description("Run the IPAM controller against a cluster (kubeconfig, or in-cluster config).")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
    .option("--context <name>", "kubeconfig context to use")
    .option("--leader-elect", "elect a leader among replicas with a Lease", d.leaderElect)
    .option(
      "--leader-election-namespace <ns>",
      "namespace of the leader election Lease",
      d.leaderElectionNamespace,
    )
    .option("--leader-election-id <name>", "name of the leader election Lease", d.leaderElectionId)
    .option(
      "--allocation-fence-namespace <ns>",
      "namespace of the allocation fence Lease; every kubipam writer of a cluster must use the same",
      d.allocationFenceNamespace,
    )
    .option(
      "--allocation-fence-name <name>",
      "name of the allocation fence Lease every writer must share",
      d.allocationFenceName,
    )
    .option(
      "--cluster-allocation-namespace <ns>",
      "namespace of the IPAMAllocation records of ClusterIPAMRanges (default: the allocation fence's); every kubipam controller of a cluster must use the same",
    )
    .option(
      "--leader-elect-lease-duration <s>",
      "seconds a lease (leader election and allocation fence) lasts without renewal",
      positiveNumber,
      d.leaseDurationSeconds,
    )
    .option(
      "--leader-elect-renew-deadline <s>",
      "seconds the leader retries renewing before it gives up",
      positiveNumber,
      d.renewDeadlineSeconds,
    )
    .option(
      "--leader-elect-retry-period <s>",
      "seconds between acquire/renew attempts",
      positiveNumber,
      d.retryPeriodSeconds,
    )
    .option("--metrics-bind-address <addr>", 'address of /metrics ("0" disables)', d.metricsBindAddress)
    .option(
      "--health-probe-bind-address <addr>",
      'address of /healthz and /readyz ("0" disables)',
      d.healthProbeBindAddress,
    )
    .option("--workers <n>", "concurrent request reconciles", positiveInt, d.workers)
    .option(
      "--allocation-events <bool>",
      "a Normal Allocated event per allocation (low priority, shed first under load; Warnings always)",
      booleanFlag,
      d.allocationEvents,
    )
    .addOption(
      new Option("--log-format <format>", "log format").choices(["json", "text"]).default(d.logFormat),
    )
    .addOption(
      new Option("--log-level <level>", "log level")
        .choices(["debug", "info", "warn", "error"])
        .default(d.logLevel),
    )
    .action(async (opts: Record<string, unknown>) => {
      const flags: ControllerFlags = {
        ...d,
        ...opts,
        leaseDurationSeconds: Number(opts.leaderElectLeaseDuration ?? d.leaseDurationSeconds),
        renewDeadlineSeconds: Number(opts.leaderElectRenewDeadline ?? d.renewDeadlineSeconds),
        retryPeriodSeconds: Number(opts.leaderElectRetryPeriod ?? d.retryPeriodSeconds),
        logFormat: isLogFormat(String(opts.logFormat)) ? (opts.logFormat as LogFormat) : d.logFormat,
        logLevel: isLogLevel(String(opts.logLevel)) ? (opts.logLevel as LogLevel) : d.logLevel,
      };
      const signal = signalHandler();
      try {
        await runController(flags, signal);
      } catch (err) {
        const lost = err instanceof LeaderElectionLostError;
        process.stderr.write(`kubipam controller: ${lost ? "leader election lost" : String(err)}\n`);
        process.exit(1);
      }
    });
}
