#!/usr/bin/env node
// kubipam's command line: the controller, the local control plane, and the CRD manifests.

import { Command } from "commander";
import { crdYaml } from "../api/crds.ts";
import { controllerCommand } from "./controller.ts";
import { runLocalController } from "./local-controller.ts";
import { startCommand } from "./start.ts";

const program = new Command("kubipam")
  .description("IP address management for Kubernetes: IPAMRange pools, IPAMRequest claims.")
  .showHelpAfterError();

program.addCommand(controllerCommand());
program.addCommand(startCommand({ runController: runLocalController }));
program
  .command("crds")
  .description("Print the CustomResourceDefinitions as YAML (kubipam crds | kubectl apply -f -).")
  .action(() => {
    process.stdout.write(crdYaml());
  });

await program.parseAsync(process.argv);
