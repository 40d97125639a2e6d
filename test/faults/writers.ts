// Shared by the "several writers" fault scenarios: which controller process holds the allocation fence
// (the Lease every writer takes before allocating), and taking that holder out — killed (-9) or paused
// past its lease until another process holds the fence.

import assert from "node:assert/strict";
import { DEFAULT_FENCE_NAME } from "../../src/controllers/setup.ts";
import { CoreTypes, type KubeClient } from "../../src/runtime/kube.ts";
import type { Lease } from "../../src/runtime/leader-election.ts";
import type { ControllerProcess } from "../../src/testing/controller-process.ts";
import { eventually } from "../harness/index.ts";

/** The holder identity of the allocation fence ("" when nobody holds it). */
export async function fenceHolder(client: KubeClient): Promise<string> {
  const lease = await client.get<Lease>(CoreTypes.lease, DEFAULT_FENCE_NAME, { namespace: "kube-system" });
  return lease.spec?.holderIdentity ?? "";
}

/** The process holding the fence, waiting until one of `candidates` does (identities are `<POD_NAME>_<uuid>`). */
export async function holderOf(
  client: KubeClient,
  candidates: ControllerProcess[],
): Promise<ControllerProcess> {
  return eventually(
    async () => {
      const holder = await fenceHolder(client);
      const p = candidates.find((c) => holder.startsWith(`${c.identity}_`));
      assert.ok(p, `fence held by ${holder || "nobody"}`);
      return p;
    },
    { timeoutMs: 30_000 },
  );
}

/** Kills (-9) whichever of `group` holds the fence; returns it. */
export async function killHolder(client: KubeClient, group: ControllerProcess[]): Promise<ControllerProcess> {
  const holder = await holderOf(client, group);
  await holder.kill("SIGKILL");
  return holder;
}

/**
 * Pauses (SIGSTOP) whichever of `group` holds the fence and waits until another one holds it: the
 * paused one sleeps with allocations in flight while someone else allocates. The caller resumes it
 * (SIGCONT) in the middle of the churn.
 */
export async function pauseHolder(
  client: KubeClient,
  group: ControllerProcess[],
): Promise<ControllerProcess> {
  const paused = await holderOf(client, group);
  paused.child.kill("SIGSTOP");
  await holderOf(
    client,
    group.filter((p) => p !== paused),
  );
  return paused;
}
