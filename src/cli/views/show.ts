// `kubectl ipam show <range>`: which request holds which block, the free blocks, pending removals and
// the requests still waiting for space.

import type { IPAMAllocation, IPAMRange, IPAMRequest } from "../../api/types.ts";
import { isInvalid, rangeRefOf } from "../../api/validation.ts";
import { formatPercent, percentNumber, qualified, renderTable, usageBar } from "./format.ts";
import { familyLabel, rangeModel } from "./range-model.ts";

/** How the request named by an allocation object stands. */
export type HolderState = "Live" | "Missing" | "Replaced";

export interface ShownBlock {
  cidr: string;
  allocation: string;
  request: { namespace: string; name: string; uid: string };
  holder: HolderState;
  /** The holder's status.state when live. */
  requestState: string | undefined;
  /** Allocated in space that was removed from spec.ranges. */
  pendingRemoval: boolean;
  /** Why the engine could not take this block (overlap, junk); undefined when it holds. */
  conflict: string | undefined;
}

export interface WaitingRequest {
  namespace: string;
  name: string;
  state: string;
  message: string;
}

export interface ShowView {
  namespace: string;
  name: string;
  state: string;
  message: string | undefined;
  family: string;
  mode: string;
  ranges: string[];
  pool: string[];
  size: bigint;
  allocated: bigint;
  free: bigint;
  /** spec.exclude and spec.gateway as written (§7). */
  exclude: string[];
  gateway: string | undefined;
  /** Excluded addresses not under an allocation. */
  excluded: bigint;
  cooldownSeconds: number;
  /** Released blocks cooling down: `<cidr> until <ISO time>`. */
  cooling: string[];
  coolingAddresses: bigint;
  blocks: ShownBlock[];
  freeBlocks: string[];
  pendingRemovals: string[];
  waiting: WaitingRequest[];
}

/**
 * The view of one range. `allocations` are the range's allocation objects; `requests` are the requests
 * that may refer to it (others are ignored).
 */
export function showRange(
  range: IPAMRange,
  allocations: readonly IPAMAllocation[],
  requests: readonly IPAMRequest[],
): ShowView {
  const model = rangeModel(range, allocations);
  const byKey = new Map<string, IPAMRequest>();
  for (const r of requests) byKey.set(qualified(r.metadata.namespace, r.metadata.name), r);
  const pending = new Set(model.pendingRemovals.map(String));
  const shown = (object: IPAMAllocation, cidr: string, conflict: string | undefined): ShownBlock => {
    const ref = object.spec?.request ?? { namespace: "", name: "", uid: "" };
    const live = byKey.get(qualified(ref.namespace, ref.name));
    const holder: HolderState = !live ? "Missing" : live.metadata.uid === ref.uid ? "Live" : "Replaced";
    return {
      cidr,
      allocation: object.metadata.name ?? "",
      request: { namespace: ref.namespace, name: ref.name, uid: ref.uid },
      holder,
      requestState: holder === "Live" ? (live?.status?.state ?? "") : undefined,
      pendingRemoval: pending.has(cidr),
      conflict,
    };
  };
  const blocks = model.held.map((h) => shown(h.object, h.cidr.toString(), undefined));
  for (const r of model.rejected) {
    const object = allocations.find((a) => a.metadata.name === r.name);
    if (object) blocks.push(shown(object, r.cidr, r.reason));
  }
  const waiting: WaitingRequest[] = [];
  for (const r of requests) {
    if (r.status?.cidr || r.metadata.deletionTimestamp) continue;
    const ref = rangeRefOf(r);
    if (isInvalid(ref) || ref.namespace !== model.namespace || ref.name !== model.name) continue;
    waiting.push({
      namespace: r.metadata.namespace ?? "",
      name: r.metadata.name ?? "",
      state: r.status?.state ?? "Pending",
      message: r.status?.message ?? "",
    });
  }
  waiting.sort((a, b) => qualified(a.namespace, a.name).localeCompare(qualified(b.namespace, b.name)));
  return {
    namespace: model.namespace,
    name: model.name,
    state: model.state,
    message: model.invalid ?? (range.status?.message || undefined),
    family: familyLabel(model.family),
    mode: model.mode,
    ranges: model.ranges,
    pool: model.pool.map(String),
    size: model.size,
    allocated: model.allocated,
    free: model.free,
    exclude: model.exclude,
    gateway: model.gateway,
    excluded: model.excluded,
    cooldownSeconds: model.cooldownSeconds,
    cooling: model.cooling.map((c) => `${c.cidr} until ${new Date(c.until).toISOString()}`),
    coolingAddresses: model.coolingAddresses,
    blocks,
    freeBlocks: model.allocator ? model.allocator.freeBlocks().map(String) : [],
    pendingRemovals: [...pending],
    waiting,
  };
}

function holderText(b: ShownBlock): string {
  const who = qualified(b.request.namespace, b.request.name);
  if (b.holder === "Missing") return `${who} (request missing)`;
  if (b.holder === "Replaced") return `${who} (request re-created: uid differs)`;
  return who;
}

export interface ShowRenderOptions {
  wide?: boolean;
  /** At most this many free blocks are listed (default 50; 0 lists all). */
  maxFreeBlocks?: number;
}

export function renderShow(view: ShowView, options: ShowRenderOptions = {}): string {
  const out: string[] = [];
  const usage =
    view.message !== undefined && view.state === "Invalid"
      ? "-"
      : `${view.allocated}/${view.size} allocated, ${view.free} free (${formatPercent(view.allocated, view.size)}) ${usageBar(view.allocated, view.size)}`;
  out.push(`Name:       ${view.name}\n`);
  out.push(`Namespace:  ${view.namespace}\n`);
  out.push(`State:      ${view.state}${view.message ? ` (${view.message})` : ""}\n`);
  out.push(`Family:     ${view.family}\n`);
  out.push(`Mode:       ${view.mode}\n`);
  out.push(`Ranges:     ${view.ranges.join(", ") || "<none>"}\n`);
  out.push(`Pool:       ${view.pool.join(", ") || "<none>"}\n`);
  out.push(`Usage:      ${usage}${setAside(view)}\n`);
  if (view.exclude.length > 0) out.push(`Exclude:    ${view.exclude.join(", ")}\n`);
  if (view.gateway) out.push(`Gateway:    ${view.gateway}\n`);
  if (view.cooldownSeconds > 0) out.push(`Cooldown:   ${view.cooldownSeconds}s after each release\n`);
  out.push("\nAllocated blocks:\n");
  if (view.blocks.length === 0) out.push("  <none>\n");
  else {
    const rows = view.blocks.map((b) => [
      b.cidr,
      holderText(b),
      b.requestState ?? "-",
      b.conflict ? `conflict: ${b.conflict}` : b.pendingRemoval ? "pending removal" : "",
      ...(options.wide ? [b.allocation, b.request.uid] : []),
    ]);
    const columns = [
      { header: "CIDR" },
      { header: "REQUEST" },
      { header: "STATE" },
      { header: "NOTE" },
      ...(options.wide ? [{ header: "ALLOCATION" }, { header: "REQUEST-UID" }] : []),
    ];
    out.push(indent(renderTable(columns, rows)));
  }
  const limit = options.maxFreeBlocks ?? 50;
  out.push(`\nFree blocks (${view.freeBlocks.length}):\n`);
  if (view.freeBlocks.length === 0) out.push("  <none>\n");
  else {
    const listed = limit > 0 ? view.freeBlocks.slice(0, limit) : view.freeBlocks;
    for (const b of listed) out.push(`  ${b}\n`);
    if (listed.length < view.freeBlocks.length) {
      out.push(`  ... ${view.freeBlocks.length - listed.length} more (-o wide or -o json lists all)\n`);
    }
  }
  if (view.cooling.length > 0) {
    out.push(`\nCooling down (${view.cooling.length}):\n`);
    for (const c of view.cooling) out.push(`  ${c}\n`);
  }
  out.push("\nPending removals:\n");
  if (view.pendingRemovals.length === 0) out.push("  <none>\n");
  for (const b of view.pendingRemovals) out.push(`  ${b}\n`);
  if (view.waiting.length > 0) {
    out.push("\nWaiting requests:\n");
    out.push(
      indent(
        renderTable(
          [{ header: "REQUEST" }, { header: "STATE" }, { header: "MESSAGE" }],
          view.waiting.map((w) => [qualified(w.namespace, w.name), w.state, w.message]),
        ),
      ),
    );
  }
  return out.join("");
}

/** Addresses neither allocated nor free: excluded, cooling down. */
function setAside(view: ShowView): string {
  const parts: string[] = [];
  if (view.excluded > 0n) parts.push(`${view.excluded} excluded`);
  if (view.coolingAddresses > 0n) parts.push(`${view.coolingAddresses} cooling down`);
  return parts.length > 0 ? `; ${parts.join(", ")}` : "";
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => (l ? `  ${l}` : l))
    .join("\n");
}

/** Plain data for -o json|yaml. */
export function showData(view: ShowView): Record<string, unknown> {
  return {
    namespace: view.namespace,
    name: view.name,
    state: view.state,
    ...(view.message !== undefined ? { message: view.message } : {}),
    family: view.family,
    mode: view.mode,
    ranges: view.ranges,
    pool: view.pool,
    size: view.size.toString(),
    allocated: view.allocated.toString(),
    free: view.free.toString(),
    excluded: view.excluded.toString(),
    cooling: view.coolingAddresses.toString(),
    percent: percentNumber(view.allocated, view.size),
    exclude: view.exclude,
    ...(view.gateway !== undefined ? { gateway: view.gateway } : {}),
    reuseCooldownSeconds: view.cooldownSeconds,
    coolingBlocks: view.cooling,
    blocks: view.blocks.map((b) => ({
      cidr: b.cidr,
      allocation: b.allocation,
      request: b.request,
      holder: b.holder,
      ...(b.requestState !== undefined ? { requestState: b.requestState } : {}),
      pendingRemoval: b.pendingRemoval,
      ...(b.conflict !== undefined ? { conflict: b.conflict } : {}),
    })),
    freeBlocks: view.freeBlocks,
    pendingRemovals: view.pendingRemovals,
    waiting: view.waiting,
  };
}
