// A stand-in for the envtest release index and its archives, on 127.0.0.1: tests of the download of
// prebuilt control-plane binaries (src/cli/control-plane/envtest-download.ts) never leave the machine.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";

export const CONTROL_PLANE_BINARIES = ["etcd", "kube-apiserver", "kubectl"] as const;

/** What goes into an archive per binary: a file to include (followed if a link), or a script's text. */
export type ArchiveContent = Record<
  (typeof CONTROL_PLANE_BINARIES)[number],
  { file: string } | { script: string }
>;

/** A tiny executable that prints `line`, in place of a 100 MB binary. */
export function fakeBinary(line: string): { script: string } {
  return { script: `#!/bin/sh\necho '${line}'\n` };
}

/** Bytes of `envtest-….tar.gz` holding controller-tools/envtest/{etcd,kube-apiserver,kubectl}. */
export function buildEnvtestArchive(content: ArchiveContent): Buffer {
  const stage = mkdtempSync(join(tmpdir(), "kubipam-envtest-archive-"));
  try {
    const dir = join(stage, "controller-tools", "envtest");
    mkdirSync(dir, { recursive: true });
    for (const name of CONTROL_PLANE_BINARIES) {
      const item = content[name];
      if ("file" in item) symlinkSync(item.file, join(dir, name));
      else {
        writeFileSync(join(dir, name), item.script);
        chmodSync(join(dir, name), 0o755);
      }
    }
    // -h stores what the links point to, as the real archives hold plain files.
    execFileSync("tar", ["-chzf", join(stage, "archive.tar.gz"), "-C", stage, "controller-tools"]);
    return readFileSync(join(stage, "archive.tar.gz"));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export function sha512(data: Buffer): string {
  return createHash("sha512").update(data).digest("hex");
}

export interface IndexEntry {
  version: string;
  os: string;
  arch: string;
  hash: string;
  /** Absolute, or relative to the index. */
  selfLink: string;
}

/** An index in the format of controller-tools' envtest-releases.yaml. */
export function indexYaml(entries: readonly IndexEntry[]): string {
  const releases: Record<string, Record<string, { hash: string; selfLink: string }>> = {};
  for (const entry of entries) {
    releases[entry.version] ??= {};
    releases[entry.version]![`envtest-${entry.version}-${entry.os}-${entry.arch}.tar.gz`] = {
      hash: entry.hash,
      selfLink: entry.selfLink,
    };
  }
  return stringify({ releases });
}

export interface Route {
  body: Buffer | string;
  /** Announce the full length but close the connection after this many bytes. */
  cutAfter?: number;
}

export interface EnvtestServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Requests per path. */
  requests: Map<string, number>;
  close(): Promise<void>;
}

/** Serves `routes` (path → body) on 127.0.0.1; anything else is 404. */
export async function startEnvtestServer(routes: Record<string, Route>): Promise<EnvtestServer> {
  const requests = new Map<string, number>();
  const server = http.createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const route = routes[path];
    if (!route) {
      response.writeHead(404).end("not found");
      return;
    }
    const body = Buffer.from(route.body);
    response.writeHead(200, { "content-length": body.length, "content-type": "application/octet-stream" });
    if (route.cutAfter === undefined) {
      response.end(body);
      return;
    }
    response.write(body.subarray(0, route.cutAfter), () => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A server that accepts connections and never answers (a black-holed proxy, a hung mirror). */
export async function startSilentServer(): Promise<{
  url: string;
  connections: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
