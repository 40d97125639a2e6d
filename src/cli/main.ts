#!/usr/bin/env node
// kubipam's command line: the controller, the local control plane, and the CRD manifests. Only the
// controller's code is loaded eagerly: `start` (the local control plane) and `crds` (the schemas and
// the YAML library) are imported when they run, which keeps them out of the deployed controller's
// memory.

import { Command } from "commander";
import { controllerCommand } from "./controller.ts";

const program = new Command("kubipam")
  .description("IP address management for Kubernetes: IPAMRange pools, IPAMRequest claims.")
  .showHelpAfterError();

program.addCommand(controllerCommand());
program
  .command("start")
  .description(
    "Start a throwaway local Kubernetes control plane (etcd + kube-apiserver on 127.0.0.1) with " +
      "kubipam's CRDs; never touches your own clusters. Ctrl-C stops it and removes its data.",
  )
  .option(
    "--with-cluster-api",
    "also install Cluster API's IPAddressClaim, IPAddress and Cluster CRDs and claim an example address",
    false,
  )
  .action(async (flags: { withClusterApi: boolean }) => {
    const [{ runStart }, { runLocalController }] = await Promise.all([
      import("./start.ts"),
      import("./local-controller.ts"),
    ]);
    process.exitCode = await runStart(
      { runController: runLocalController },
      { withClusterApi: flags.withClusterApi },
    );
  });
program
  .command("crds")
  .description("Print the CustomResourceDefinitions as YAML (kubipam crds | kubectl apply -f -).")
  .action(async () => {
    const { crdYaml } = await import("../api/crds.ts");
    process.stdout.write(crdYaml());
  });

await program.parseAsync(process.argv);
