// Condition types and reasons kubipam writes into status.conditions, published for programs that read
// them. The controller may add reasons later: compare with these, but keep the raw string for anything
// unknown.

/** Condition types. `Ready` on ranges and requests; `InRange` and `Admitted` on allocated requests. */
export const ConditionType = {
  Ready: "Ready",
  InRange: "InRange",
  Admitted: "Admitted",
} as const;

/** Reasons of a request's `Ready` condition. */
export const RequestReadyReason = {
  /** Ready=True: status.cidr holds the block. */
  Allocated: "Allocated",
  /** Ready=False, state Busy: no space now; retried when space is freed or the range changes. */
  NoSpace: "NoSpace",
  /** Ready=False, state Invalid: the message says why (bad size, range not found, …). */
  Invalid: "Invalid",
  /** Ready=False: the controller lacks a permission; it retries by itself. */
  Forbidden: "Forbidden",
  /** Ready=False: the API server rejected a write the controller needed; the message is its own. */
  Rejected: "Rejected",
} as const;

/** Reasons of an allocated request's `InRange` condition. */
export const RequestInRangeReason = {
  InsideRange: "InsideRange",
  /** InRange=False: the range shrank below the block; it stays allocated until released. */
  RangeShrunk: "RangeShrunk",
  /** InRange=False: an exclusion (or gateway) added after the block overlaps it; it stays until released. */
  Excluded: "Excluded",
} as const;

/** Reasons of an allocated request's `Admitted` condition. */
export const RequestAdmittedReason = {
  NamespaceAdmitted: "NamespaceAdmitted",
  /** Admitted=False: the range no longer admits the request's namespace; the block stays allocated. */
  ConsentWithdrawn: "ConsentWithdrawn",
} as const;

/** Event reasons on requests (Allocated is Normal, the others Warning) and ranges (Ready is Normal). */
export const EventReason = {
  Allocated: "Allocated",
  Busy: "Busy",
  Invalid: "Invalid",
  Forbidden: "Forbidden",
  Rejected: "Rejected",
  Ready: "Ready",
  Deleting: "Deleting",
} as const;

/** Reasons of a range's `Ready` condition. */
export const RangeReadyReason = {
  Valid: "Valid",
  InvalidSpec: "InvalidSpec",
  /** Deleted, waiting until no request refers to it. */
  Deleting: "Deleting",
} as const;

export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];
export type RequestReadyReasonName = (typeof RequestReadyReason)[keyof typeof RequestReadyReason];
export type RequestInRangeReasonName = (typeof RequestInRangeReason)[keyof typeof RequestInRangeReason];
export type RangeReadyReasonName = (typeof RangeReadyReason)[keyof typeof RangeReadyReason];
