// A child process of the local control plane (etcd or kube-apiserver): its exit, its log, and
// stopping it; and the readiness probe both are polled with.

import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";

export class ManagedProcess {
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logPath: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? null : 0);
        resolve(this.exitCode);
      });
      child.once("error", () => {
        this.exitCode = null;
        resolve(null);
      });
    });
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.child.ref();
    this.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    const result = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (result === "timeout" && this.running) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
  }

  /** Sends `signal` and resolves once the process is gone. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.running) return;
    this.child.ref(); // keep the event loop alive until it is gone
    this.child.kill(signal);
    await this.exited;
  }

  killNow(): void {
    if (this.running) this.child.kill("SIGKILL");
  }
}

/** The HTTP status of a GET (self-signed certificates accepted: loopback only). */
export function httpGetStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith("https:") ? https : http;
    const request = client.get(url, { headers, rejectUnauthorized: false, timeout: 5_000 }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    request.on("timeout", () => request.destroy(new Error("request timed out")));
    request.on("error", reject);
  });
}
