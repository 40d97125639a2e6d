// One family of status predicates for tests and benchmarks: the state an IPAM object is in.

import type { IPAMRequest } from "../api/types.ts";

/** Anything with a `status.state` (IPAMRange, IPAMRequest). */
export interface WithState {
  status?: { state?: string } | undefined;
}

/** A predicate: the object's `status.state` is `state`. */
export function stateIs(state: string): (object: WithState) => boolean {
  return (object) => object.status?.state === state;
}

export const isReady = stateIs("Ready");

/** The controller has looked at it: it has a state, whichever. */
export function hasState(object: WithState): boolean {
  return Boolean(object.status?.state);
}

/** A request that is Ready with its CIDR. */
export function isAllocated(request: IPAMRequest): boolean {
  return isReady(request) && Boolean(request.status?.cidr);
}

/** Deletion has begun (a finalizer still holds the object). */
export function isDeleting(object: { metadata: { deletionTimestamp?: string } }): boolean {
  return Boolean(object.metadata.deletionTimestamp);
}
