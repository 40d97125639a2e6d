// Pure views of `kubectl ipam`: functions over plain API objects, no I/O.
export {
  type CheckInput,
  type Finding,
  type FindingKind,
  findingsData,
  findProblems,
  problemCount,
  renderFindings,
  type Severity,
} from "./check.ts";
export { type Column, formatPercent, percentNumber, qualified, renderTable, usageBar } from "./format.ts";
export {
  allocationsOf,
  allocationsOfPool,
  familyLabel,
  type RangeModel,
  rangeLabel,
  rangeModel,
} from "./range-model.ts";
export {
  type HolderState,
  renderShow,
  type ShownBlock,
  type ShowView,
  showData,
  showRange,
  type WaitingRequest,
} from "./show.ts";
export { renderUsage, type UsageRow, usageData, usageRowOf, usageRows } from "./usage.ts";
