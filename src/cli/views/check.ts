// `kubectl ipam check`: consistency findings over ranges, allocation objects and requests. Pure: the
// caller lists the objects (and fetches the ones referenced across namespaces).

import {
  CLUSTER_RANGE_KIND,
  DEFAULT_CLUSTER_ALLOCATION_NAMESPACE,
  type PoolRef,
  poolOfObject,
  poolOfRecord,
  rangePool,
} from "../../api/pool-ref.ts";
import type { IPAMAllocation, IPAMRequest, RangeObject } from "../../api/types.ts";
import { isInvalid, rangeRefOf, validateRangeObject } from "../../api/validation.ts";
import { Cidr } from "../../ipam/index.ts";
import { poolFieldFindings } from "./check-pool-fields.ts";
import { qualified, renderTable } from "./format.ts";
import { rangeLabel } from "./range-model.ts";

export type FindingKind =
  /** Two allocation objects (or two requests' CIDRs) of one range overlap. */
  | "Overlap"
  /** An allocation object whose request (or range) is gone, or was re-created (uid differs). */
  | "OrphanAllocation"
  /** A request's status.cidr that no allocation object of its range guards. */
  | "MissingAllocation"
  /** A request's status.cidr that lies (partly) outside its range's pool. */
  | "OutsideRange"
  /** A request holding a CIDR of a range that does not exist. */
  | "MissingRange"
  /** An unparsable CIDR in an allocation object or a request's status. */
  | "InvalidCidr"
  /** Warning: a record over an exclusion or the gateway (a pending removal, kept until released). */
  | "HeldOverExclusion"
  /** Warning: a status.cooling entry the controller cannot read (and ignores). */
  | "InvalidCooling";

/** `error`: inconsistent state; `warning`: consistent but worth knowing (check exits 0 on these alone). */
export type Severity = "error" | "warning";

const WARNINGS: ReadonlySet<FindingKind> = new Set(["HeldOverExclusion", "InvalidCooling"]);

export interface Finding {
  kind: FindingKind;
  severity: Severity;
  /** The object the finding is about. */
  objectKind: "IPAMAllocation" | "IPAMRequest" | RangeObject["kind"];
  namespace: string;
  name: string;
  /** The range concerned: `namespace/name`, or `ClusterIPAMRange/name`. */
  range: string;
  cidr: string;
  message: string;
}

export interface CheckInput {
  /** IPAMRanges and ClusterIPAMRanges. */
  ranges: readonly RangeObject[];
  allocations: readonly IPAMAllocation[];
  requests: readonly IPAMRequest[];
  /** Where the records of ClusterIPAMRanges live (default kube-system). */
  clusterAllocationNamespace?: string;
}

interface Located<T> {
  cidr: Cidr;
  object: T;
}

function compareLocated<T>(a: Located<T>, b: Located<T>): number {
  if (a.cidr.family !== b.cidr.family) return a.cidr.family - b.cidr.family;
  if (a.cidr.start !== b.cidr.start) return a.cidr.start < b.cidr.start ? -1 : 1;
  return a.cidr.prefix - b.cidr.prefix;
}

/** Overlapping pairs among `items` (each overlap once, with the earlier block that covers it). */
function overlaps<T>(items: Located<T>[]): [Located<T>, Located<T>][] {
  const sorted = [...items].sort(compareLocated);
  const pairs: [Located<T>, Located<T>][] = [];
  let cover: Located<T> | undefined;
  for (const item of sorted) {
    if (cover && cover.cidr.family === item.cidr.family && item.cidr.start <= cover.cidr.end) {
      pairs.push([cover, item]);
      if (item.cidr.end > cover.cidr.end) cover = item;
    } else {
      cover = item;
    }
  }
  return pairs;
}

function meta(o: { metadata: { namespace?: string; name?: string } }): { namespace: string; name: string } {
  return { namespace: o.metadata.namespace ?? "", name: o.metadata.name ?? "" };
}

const KIND_ORDER: FindingKind[] = [
  "Overlap",
  "OrphanAllocation",
  "MissingAllocation",
  "OutsideRange",
  "MissingRange",
  "InvalidCidr",
  "HeldOverExclusion",
  "InvalidCooling",
];

/** Every finding, ordered by range, kind and object. An empty list means consistent. */
export function findProblems(input: CheckInput): Finding[] {
  const findings: Omit<Finding, "severity">[] = [];
  const clusterNs = input.clusterAllocationNamespace ?? DEFAULT_CLUSTER_ALLOCATION_NAMESPACE;
  const ranges = new Map<string, RangeObject>();
  for (const r of input.ranges) ranges.set(rangeLabel(poolOfObject(r)), r);
  const requests = new Map<string, IPAMRequest>();
  for (const r of input.requests) requests.set(qualified(r.metadata.namespace, r.metadata.name), r);

  // Allocation objects, by range.
  const allocationsByRange = new Map<string, Located<IPAMAllocation>[]>();
  for (const a of input.allocations) {
    const { namespace, name } = meta(a);
    const pool = recordPool(a, clusterNs);
    const rangeKey = rangeLabel(pool);
    const text = a.spec?.cidr ?? "";
    const base = { objectKind: "IPAMAllocation" as const, namespace, name, range: rangeKey, cidr: text };
    const cidr = Cidr.tryParse(text);
    if (cidr === undefined) {
      findings.push({ ...base, kind: "InvalidCidr", message: `spec.cidr "${text}" is not a CIDR` });
    } else {
      const list = allocationsByRange.get(rangeKey) ?? [];
      list.push({ cidr, object: a });
      allocationsByRange.set(rangeKey, list);
    }
    const ref = a.spec?.request;
    const requestKey = qualified(ref?.namespace, ref?.name);
    const request = requests.get(requestKey);
    const range = ranges.get(rangeKey);
    // A Cluster API claim's record: claims are not read here, so only its range is checked.
    const claim = ref?.kind === "IPAddressClaim";
    if (!request && !claim) {
      findings.push({
        ...base,
        kind: "OrphanAllocation",
        message: `held for request ${requestKey}, which does not exist`,
      });
    } else if (request && request.metadata.uid !== ref?.uid) {
      findings.push({
        ...base,
        kind: "OrphanAllocation",
        message: `held for request ${requestKey} with uid ${ref?.uid ?? ""}, but that request is another object now (uid ${request.metadata.uid ?? ""})`,
      });
    } else if (pool.kind === CLUSTER_RANGE_KIND && namespace !== clusterNs) {
      findings.push({
        ...base,
        kind: "OrphanAllocation",
        message: `a record of ${pool.kind} ${pool.name} outside the cluster allocation namespace ${clusterNs}: kubipam does not count it`,
      });
    } else if (!range) {
      findings.push({
        ...base,
        kind: "OrphanAllocation",
        message: `its ${pool.kind} ${rangeKey} does not exist`,
      });
    } else if (a.spec?.range?.uid && range.metadata.uid && a.spec.range.uid !== range.metadata.uid) {
      findings.push({
        ...base,
        kind: "OrphanAllocation",
        message: `made for an earlier ${pool.kind} ${rangeKey} (uid ${a.spec.range.uid}, now ${range.metadata.uid})`,
      });
    }
  }
  for (const [rangeKey, list] of allocationsByRange) {
    for (const [a, b] of overlaps(list)) {
      findings.push({
        kind: "Overlap",
        objectKind: "IPAMAllocation",
        ...meta(b.object),
        range: rangeKey,
        cidr: b.cidr.toString(),
        message:
          a.cidr.equals(b.cidr) || a.cidr.contains(b.cidr)
            ? `${b.cidr} overlaps ${a.cidr} of allocation ${a.object.metadata.name ?? ""} (request ${qualified(a.object.spec?.request?.namespace, a.object.spec?.request?.name)})`
            : `${b.cidr} overlaps ${a.cidr} of allocation ${a.object.metadata.name ?? ""}`,
      });
    }
  }

  // Requests that hold a CIDR.
  const heldByRange = new Map<string, Located<IPAMRequest>[]>();
  for (const r of input.requests) {
    const text = r.status?.cidr;
    if (!text) continue;
    const { namespace, name } = meta(r);
    const ref = rangeRefOf(r);
    const rangeKey = isInvalid(ref) ? "" : rangeLabel(ref);
    const base = { objectKind: "IPAMRequest" as const, namespace, name, range: rangeKey, cidr: text };
    const cidr = Cidr.tryParse(text);
    if (cidr === undefined) {
      findings.push({ ...base, kind: "InvalidCidr", message: `status.cidr "${text}" is not a CIDR` });
      continue;
    }
    if (isInvalid(ref)) continue; // the spec is immutable and was valid when allocated; nothing to compare
    const list = heldByRange.get(rangeKey) ?? [];
    list.push({ cidr, object: r });
    heldByRange.set(rangeKey, list);
    const range = ranges.get(rangeKey);
    if (!range) {
      findings.push({
        ...base,
        kind: "MissingRange",
        message: `holds ${cidr} of ${ref.kind} ${rangeKey}, which does not exist`,
      });
      continue;
    }
    const guards = (allocationsByRange.get(rangeKey) ?? []).filter((a) => a.cidr.equals(cidr));
    const own = guards.find((a) => a.object.spec?.request?.uid === r.metadata.uid);
    if (!own) {
      const other = guards[0]?.object.spec?.request;
      findings.push({
        ...base,
        kind: "MissingAllocation",
        message: other
          ? `${cidr} is guarded by the allocation of request ${qualified(other.namespace, other.name)}, not by one of this request`
          : `no IPAMAllocation of range ${rangeKey} guards ${cidr}`,
      });
    }
    const spec = validateRangeObject(range);
    if (spec.ok && !spec.blocks.some((b) => b.contains(cidr))) {
      findings.push({
        ...base,
        kind: "OutsideRange",
        message: `${cidr} is outside the ranges of ${ref.kind} ${rangeKey} (${(range.spec?.ranges ?? []).join(", ") || "none"})`,
      });
    }
  }
  for (const [rangeKey, list] of heldByRange) {
    for (const [a, b] of overlaps(list)) {
      findings.push({
        kind: "Overlap",
        objectKind: "IPAMRequest",
        ...meta(b.object),
        range: rangeKey,
        cidr: b.cidr.toString(),
        message: `${b.cidr} overlaps ${a.cidr} held by request ${qualified(a.object.metadata.namespace, a.object.metadata.name)}`,
      });
    }
  }
  findings.push(...poolFieldFindings(ranges, allocationsByRange));
  return findings
    .map((f): Finding => ({ ...f, severity: WARNINGS.has(f.kind) ? "warning" : "error" }))
    .sort(
      (x, y) =>
        x.range.localeCompare(y.range) ||
        KIND_ORDER.indexOf(x.kind) - KIND_ORDER.indexOf(y.kind) ||
        x.objectKind.localeCompare(y.objectKind) ||
        qualified(x.namespace, x.name).localeCompare(qualified(y.namespace, y.name)),
    );
}

/** The pool a record names (a ClusterIPAMRange's also when it lies outside the cluster allocation namespace). */
function recordPool(a: IPAMAllocation, clusterNs: string): PoolRef {
  const counted = poolOfRecord(a, clusterNs);
  if (counted) return counted;
  const name = a.spec?.range?.name ?? a.metadata.labels?.["ipam.mandelsoft.org/range"] ?? "";
  if (a.spec?.range?.kind === CLUSTER_RANGE_KIND) return { kind: CLUSTER_RANGE_KIND, namespace: "", name };
  return rangePool(a.metadata.namespace ?? "", name);
}

/** Errors only: what makes `kubectl ipam check` exit 1. */
export function problemCount(findings: readonly Finding[]): number {
  return findings.filter((f) => f.severity === "error").length;
}

export function renderFindings(findings: readonly Finding[]): string {
  if (findings.length === 0) return "No problems found.\n";
  const rows = findings.map((f) => [
    f.severity === "warning" ? `${f.kind} (warning)` : f.kind,
    `${f.objectKind}/${qualified(f.namespace, f.name)}`,
    f.range,
    f.cidr,
    f.message,
  ]);
  const table = renderTable(
    [
      { header: "PROBLEM" },
      { header: "OBJECT" },
      { header: "RANGE" },
      { header: "CIDR" },
      { header: "MESSAGE" },
    ],
    rows,
  );
  return table + summary(problemCount(findings), findings.length - problemCount(findings));
}

/** `2 problems found.`, `1 problem found, 1 warning.`, `No problems found, 2 warnings.` */
function summary(problems: number, warnings: number): string {
  const found =
    problems === 0 ? "No problems found" : `${problems} problem${problems === 1 ? "" : "s"} found`;
  return warnings === 0 ? `${found}.\n` : `${found}, ${warnings} warning${warnings === 1 ? "" : "s"}.\n`;
}

export function findingsData(findings: readonly Finding[]): {
  problems: number;
  warnings: number;
  findings: Finding[];
} {
  const problems = problemCount(findings);
  return { problems, warnings: findings.length - problems, findings: [...findings] };
}
