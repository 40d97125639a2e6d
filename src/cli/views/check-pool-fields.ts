// `kubectl ipam check`, the §7 pool fields: warnings, not errors. A block held over an exclusion or the
// gateway (added after it was allocated) is a pending removal: the controller keeps it until its holder
// releases it. A status.cooling entry the controller cannot read is dropped: its block does not cool.

import type { IPAMAllocation, RangeObject } from "../../api/types.ts";
import { validateRangeObject } from "../../api/validation.ts";
import { type Cidr, type Exclusion, parseCoolingEntries } from "../../ipam/index.ts";
import type { Finding } from "./check.ts";
import { qualified } from "./format.ts";

export interface HeldRecord {
  cidr: Cidr;
  object: IPAMAllocation;
}

/** Findings about pool fields: records over exclusions and malformed cooling entries, per range. */
export function poolFieldFindings(
  ranges: ReadonlyMap<string, RangeObject>,
  recordsByRange: ReadonlyMap<string, readonly HeldRecord[]>,
): Omit<Finding, "severity">[] {
  const findings: Omit<Finding, "severity">[] = [];
  for (const [rangeKey, range] of ranges) {
    const spec = validateRangeObject(range);
    // An invalid spec is reported by the range's own status; its exclusions and family are unknown.
    if (!spec.ok) continue;
    for (const record of recordsByRange.get(rangeKey) ?? []) {
      const excluded = overExclusions(record.cidr, spec.exclusions);
      if (excluded.length === 0 || !madeFor(record.object, range)) continue;
      findings.push({
        kind: "HeldOverExclusion",
        objectKind: "IPAMAllocation",
        namespace: record.object.metadata.namespace ?? "",
        name: record.object.metadata.name ?? "",
        range: rangeKey,
        cidr: record.cidr.toString(),
        message: `${record.cidr} overlaps excluded ${excluded.map((e) => e.entry).join(", ")}: a pending removal, kept until ${holderOf(record.object)} releases it`,
      });
    }
    if (spec.family === undefined) continue;
    for (const error of parseCoolingEntries(range.status?.cooling, spec.family).errors) {
      findings.push({
        kind: "InvalidCooling",
        objectKind: range.kind,
        namespace: range.metadata.namespace ?? "",
        name: range.metadata.name ?? "",
        range: rangeKey,
        cidr: "",
        message: `status.cooling: ${error.message}; the controller ignores it (that block does not cool down)`,
      });
    }
  }
  return findings;
}

function overExclusions(cidr: Cidr, exclusions: readonly Exclusion[]): Exclusion[] {
  return exclusions.filter((e) => e.family === cidr.family && e.first <= cidr.end && cidr.start <= e.last);
}

/** A record of this range object (not of an earlier one of the same name: that is an orphan). */
function madeFor(record: IPAMAllocation, range: RangeObject): boolean {
  const uid = record.spec?.range?.uid;
  return !uid || !range.metadata.uid || uid === range.metadata.uid;
}

/** The holder a record names: an IPAMRequest, or (its `kind` says so) a Cluster API claim. */
function holderOf(record: IPAMAllocation): string {
  const ref = record.spec?.request as { namespace?: string; name?: string; kind?: string } | undefined;
  return `${ref?.kind ?? "IPAMRequest"} ${qualified(ref?.namespace, ref?.name)}`;
}
