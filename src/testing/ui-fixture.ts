// Cluster objects made up in memory for the UI's benchmark and screenshot: ranges and records as the
// controller writes them, fed straight into a ClusterState (no API server), so the page shows a
// chosen state — any size, every kind of block — through the real server and data layer.

import { API_VERSION, type IPAMAllocation, type IPAMRequest, RANGE_LABEL } from "../api/types.ts";
import { allocationName } from "../api/validation.ts";
import { ClusterState } from "../cli/ui/cluster-state.ts";
import type { RangeObject } from "../cli/ui/objects.ts";

export interface FixtureRange {
  namespace: string;
  name: string;
  ranges: string[];
  exclude?: string[];
  gateway?: string;
  cooling?: string[];
  reuseCooldownSeconds?: number;
}

export interface FixtureBlock {
  cidr: string;
  holder: string;
  /** The holder's request status (default Ready). */
  state?: string;
  claim?: boolean;
}

export function rangeObject(range: FixtureRange): RangeObject {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMRange",
    metadata: { namespace: range.namespace, name: range.name, uid: `uid-${range.name}` },
    spec: {
      ranges: range.ranges,
      ...(range.exclude ? { exclude: range.exclude } : {}),
      ...(range.gateway ? { gateway: range.gateway } : {}),
      ...(range.reuseCooldownSeconds ? { reuseCooldownSeconds: range.reuseCooldownSeconds } : {}),
    },
    status: { state: "Ready", message: "", ...(range.cooling ? { cooling: range.cooling } : {}) },
  };
}

export function recordObject(range: FixtureRange, block: FixtureBlock): IPAMAllocation {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMAllocation",
    metadata: {
      namespace: range.namespace,
      name: allocationName(range.name, block.cidr),
      labels: { [RANGE_LABEL]: range.name },
    },
    spec: {
      range: { name: range.name, uid: `uid-${range.name}` },
      cidr: block.cidr,
      request: {
        namespace: range.namespace,
        name: block.holder,
        uid: `uid-${block.holder}`,
        ...(block.claim ? { kind: "IPAddressClaim" as const } : {}),
      } as IPAMAllocation["spec"]["request"],
    },
  };
}

export function requestObject(range: FixtureRange, block: FixtureBlock): IPAMRequest {
  return {
    apiVersion: API_VERSION,
    kind: "IPAMRequest",
    metadata: { namespace: range.namespace, name: block.holder },
    spec: { ipam: { name: range.name } },
    status: { state: (block.state ?? "Ready") as "Ready", message: "", cidr: block.cidr },
  };
}

/** A ClusterState holding `ranges` with their blocks (and a request per block not held by a claim). */
export function fixtureState(ranges: { range: FixtureRange; blocks: FixtureBlock[] }[]): ClusterState {
  const state = new ClusterState();
  for (const { range, blocks } of ranges) {
    state.putRange(rangeObject(range));
    for (const block of blocks) {
      state.putRecord(recordObject(range, block));
      if (!block.claim) state.putRequest(requestObject(range, block));
    }
  }
  return state;
}
