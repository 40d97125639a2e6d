// Standard Kubernetes label selectors (metav1.LabelSelector): matchLabels and matchExpressions, all
// of which must hold; an empty selector matches everything. Pure: the caller brings the labels.

import type { LabelSelector, LabelSelectorRequirement } from "./types.ts";

const OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"];

/** What is wrong with a selector (the API server's rules for metav1.LabelSelector), or undefined. */
export function selectorProblem(selector: LabelSelector | undefined): string | undefined {
  for (const [i, r] of (selector?.matchExpressions ?? []).entries()) {
    const where = `matchExpressions[${i}]`;
    if (!r.key) return `${where}: key is required`;
    if (!OPERATORS.includes(r.operator)) {
      return `${where}: invalid operator "${r.operator}": use In, NotIn, Exists or DoesNotExist`;
    }
    const values = r.values ?? [];
    if ((r.operator === "In" || r.operator === "NotIn") && values.length === 0) {
      return `${where}: operator ${r.operator} needs at least one value`;
    }
    if ((r.operator === "Exists" || r.operator === "DoesNotExist") && values.length > 0) {
      return `${where}: operator ${r.operator} takes no values`;
    }
  }
  return undefined;
}

/** Whether labels satisfy the selector; absent or empty selects everything, a bad selector nothing. */
export function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector) return true;
  if (selectorProblem(selector)) return false;
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((r) => requirementHolds(r, have));
}

function requirementHolds(r: LabelSelectorRequirement, labels: Record<string, string>): boolean {
  const present = Object.hasOwn(labels, r.key);
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      return present && values.includes(labels[r.key] as string);
    case "NotIn":
      return !present || !values.includes(labels[r.key] as string);
    case "Exists":
      return present;
    default:
      return !present;
  }
}
