// `kubipam start` (`npm start`): a throwaway local Kubernetes control plane with kubipam's CRDs, and
// the controller running against it once it is plugged in. It never reads $KUBECONFIG or
// ~/.kube/config: everything happens on a fresh etcd + kube-apiserver on 127.0.0.1, whose kubeconfig
// lives in a temporary folder that is removed on Ctrl-C.

import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  LocalControlPlane,
  loadClusterApiCrds,
  loadProjectCrds,
  resolveBinDir,
} from "./control-plane/index.ts";

/** What the user asked `start` to add to the local control plane. */
export interface StartExtras {
  /** Cluster API's IPAM and Cluster CRDs are installed, so that claims can be tried. */
  withClusterApi: boolean;
}

export interface StartOptions {
  /**
   * Runs the controller against the local control plane until `signal` aborts. Resolving early ends
   * `start`; rejecting makes it fail. Without it, `start` serves the control plane alone.
   */
  runController?: (kubeconfigPath: string, signal: AbortSignal, extras: StartExtras) => Promise<void>;
  /** Folder with etcd and kube-apiserver (default: found, downloaded or built by `resolveBinDir`). */
  binDir?: string;
  /** Where the instructions go (default stdout); progress goes to stderr. */
  out?: NodeJS.WritableStream;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

function firstCommand(crds: object[] | undefined): string {
  const groups = new Set<string>();
  for (const crd of crds ?? []) {
    const group = (crd as { spec?: { group?: unknown } }).spec?.group;
    if (typeof group === "string") groups.add(group);
  }
  const [group] = groups;
  return group ? `api-resources --api-group=${group}` : "get namespaces";
}

/** Starts everything, prints how to use it, and resolves with the exit code once stopped. */
export async function runStart(
  options: StartOptions = {},
  extras: StartExtras = { withClusterApi: false },
): Promise<number> {
  const out = options.out ?? process.stdout;
  const progress = (message: string): void => {
    process.stderr.write(`kubipam: ${message}\n`);
  };
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      progress(`${signal}: stopping (again to force)`);
      abort.abort();
    } else {
      // The exit hook kills etcd and kube-apiserver; the janitor removes the folder.
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);

  let controlPlane: LocalControlPlane | undefined;
  try {
    const binDir = options.binDir ?? (await resolveBinDir(process.env, { signal: abort.signal }));
    abort.signal.throwIfAborted();
    progress("starting etcd and kube-apiserver on 127.0.0.1");
    controlPlane = await LocalControlPlane.start({ binDir, handleSignals: false, log: progress });
    abort.signal.throwIfAborted();
    const crds = await loadProjectCrds();
    if (crds) {
      await controlPlane.installCrds(crds);
      progress(`installed ${crds.length} CustomResourceDefinitions`);
    }
    if (extras.withClusterApi) {
      progress("installing the Cluster API IPAM and Cluster CRDs (generated with controller-gen)");
      await controlPlane.installCrds(await loadClusterApiCrds());
    }
    abort.signal.throwIfAborted();

    const kubectlPath = join(binDir, "kubectl");
    const kubectl = existsSync(kubectlPath) ? quote(kubectlPath) : "kubectl";
    out.write(
      [
        "",
        `Local Kubernetes ${controlPlane.version} control plane is ready at ${controlPlane.server}.`,
        options.runController ? "The kubipam controller runs against it." : "",
        "In another shell:",
        "",
        `  export KUBECONFIG=${quote(controlPlane.kubeconfigPath)}`,
        `  ${kubectl} ${firstCommand(crds)}`,
        "",
        "Press Ctrl-C to stop; the control plane and its data are removed.",
        "",
      ]
        .filter((line, index, lines) => line !== "" || lines[index - 1] !== "")
        .join("\n"),
    );

    if (options.runController) {
      await options.runController(controlPlane.kubeconfigPath, abort.signal, extras);
      if (!abort.signal.aborted) {
        progress("the controller stopped");
        return 1;
      }
    } else {
      await new Promise<void>((resolve) =>
        abort.signal.addEventListener("abort", () => resolve(), { once: true }),
      );
    }
    return 0;
  } catch (error) {
    if (abort.signal.aborted) return 130;
    progress(error instanceof Error ? error.message : String(error));
    return 1;
  } finally {
    if (controlPlane) {
      progress("stopping the control plane");
      await controlPlane.stop();
      progress("stopped; temporary files removed");
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
  }
}
