// `npm start` (kubipam start): a throwaway control plane with the controller and an example
// allocation; with --with-cluster-api also the real Cluster API CRDs and an example claim served
// from the same range. Ctrl-C stops everything and removes the data.

import assert from "node:assert/strict";
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { Readable } from "node:stream";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { eventually } from "../harness/index.ts";

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

interface Started {
  child: ChildProcessByStdio<null, Readable, Readable>;
  output: () => string;
}

function start(args: string[]): Started {
  const child = spawn(process.execPath, ["--import", "tsx", main, "start", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, KUBIPAM_ENVTEST_INDEX: "off" },
  });
  let text = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    text += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    text += chunk;
  });
  return { child, output: () => text };
}

async function stop({ child }: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.kill("SIGINT");
  return exited;
}

function kubeconfigOf(output: string): string {
  const path = /export KUBECONFIG=(\S+)/.exec(output)?.[1];
  assert.ok(path, `no KUBECONFIG line in:\n${output}`);
  return path;
}

describe("kubipam start", () => {
  test("serves an example allocation, and Ctrl-C removes everything", async () => {
    const started = start([]);
    try {
      const line = await eventually(
        () => {
          const found = /Example: .* gave IPAMRequest default\/example (\S+)\./.exec(started.output());
          assert.ok(found, started.output());
          return found[1];
        },
        { timeoutMs: 90_000, intervalMs: 200 },
      );
      assert.equal(line, "192.168.0.0/24");
      const kubeconfig = kubeconfigOf(started.output());
      assert.equal(existsSync(kubeconfig), true);
      assert.equal(await stop(started), 0);
      assert.equal(existsSync(kubeconfig), false);
    } finally {
      started.child.kill("SIGKILL");
    }
  });

  test("--with-cluster-api answers an IPAddressClaim from the same range", async () => {
    const started = start(["--with-cluster-api"]);
    try {
      const address = await eventually(
        () => {
          const found = /IPAddressClaim default\/example got IPAddress default\/example (\S+) /.exec(
            started.output(),
          );
          assert.ok(found, started.output());
          return found[1];
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
      // The request holds 192.168.0.0/24; the claim's single address lies elsewhere in the /16.
      assert.match(address ?? "", /^192\.168\.\d+\.\d+\/16$/);
      assert.doesNotMatch(address ?? "", /^192\.168\.0\./);
      assert.equal(await stop(started), 0);
    } finally {
      started.child.kill("SIGKILL");
    }
  });
});
