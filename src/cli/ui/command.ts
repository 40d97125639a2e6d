// `kubectl ipam ui`: follow the cluster (watch.ts), serve the page (server.ts) on 127.0.0.1, print the
// address, open a browser if asked and possible, and run until interrupted. Read-only.

import { spawn } from "node:child_process";
import type { KubeClient } from "../../runtime/kube.ts";
import { ClusterState } from "./cluster-state.ts";
import { isLoopback, startServer } from "./server.ts";
import { type Scope, startWatches } from "./watch.ts";

export interface UiFlags {
  port?: string;
  address?: string;
  /** commander's `--no-open`: false when given. */
  open?: boolean;
}

export interface RunningUi {
  url: string;
  state: ClusterState;
  close(): Promise<void>;
}

export class UiFlagError extends Error {}

export function parsePort(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new UiFlagError(`invalid --port "${text}": use a port number from 0 to 65535 (0: any free port)`);
  }
  return Number(text);
}

/** Lists and watches, then serves; resolves once the first lists are in (the page is complete). */
export async function startUi(
  client: KubeClient,
  scope: Scope,
  address = "127.0.0.1",
  port = 0,
): Promise<RunningUi> {
  const state = new ClusterState();
  const stop = new AbortController();
  await startWatches(client, state, scope, stop.signal);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(state, address, port);
  } catch (error) {
    stop.abort();
    state.close();
    throw error;
  }
  return {
    url: server.url,
    state,
    close: async () => {
      stop.abort();
      state.close();
      await server.close();
    },
  };
}

/** Best effort, never an error: a desktop may have no opener, a server no display. */
function openBrowser(url: string): void {
  const platform = process.platform;
  let command: [string, string[]] | undefined;
  if (platform === "darwin") command = ["open", [url]];
  else if (platform === "win32") command = ["cmd", ["/c", "start", "", url]];
  else if (process.env.DISPLAY || process.env.WAYLAND_DISPLAY) command = ["xdg-open", [url]];
  if (!command) return;
  try {
    const child = spawn(command[0], command[1], { detached: true, stdio: "ignore" });
    child.on("error", () => {});
    child.unref();
  } catch {
    // No opener: the printed address is enough.
  }
}

export interface UiIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Runs the UI until SIGINT/SIGTERM; returns the exit status. */
export async function runUi(io: UiIo, client: KubeClient, scope: Scope, flags: UiFlags): Promise<number> {
  const port = parsePort(flags.port);
  const address = flags.address ?? "127.0.0.1";
  if (!isLoopback(address)) {
    io.stderr(
      `warning: serving on ${address}, not only on this machine: anyone who can reach it sees the ` +
        "cluster's address pools as your credentials show them\n",
    );
  }
  const ui = await startUi(client, scope, address, port);
  const where = scope.all ? "all namespaces" : `namespace ${scope.namespace} and cluster-wide ranges`;
  io.stdout(`kubectl ipam ui: ${ui.url} (${where}; read-only; Ctrl-C stops)\n`);
  for (const warning of ui.state.warnings.values()) io.stderr(`warning: ${warning}\n`);
  if (flags.open !== false) openBrowser(ui.url);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  await ui.close();
  return 0;
}
