// Text helpers for kubectl-style output: tables, exact percentages of bigints, usage bars.

export type Align = "left" | "right";

export interface Column {
  header: string;
  align?: Align;
}

/** A kubectl-style table: upper-case headers, columns three spaces apart, no trailing blanks. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? "";
        const width = widths[i] ?? 0;
        return c.align === "right" ? cell.padStart(width) : cell.padEnd(width);
      })
      .join("   ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)].map((l) => `${l}\n`).join("");
}

/**
 * `part` of `whole` in percent with one decimal, rounded down so that only a full pool shows 100%;
 * a non-zero share too small to show is `<0.1%`. An empty whole gives `-`.
 */
export function formatPercent(part: bigint, whole: bigint): string {
  if (whole <= 0n) return "-";
  const tenths = (part * 1000n) / whole;
  if (tenths === 0n && part > 0n) return "<0.1%";
  return `${tenths / 10n}.${tenths % 10n}%`;
}

/** `part` of `whole` in percent as a number with two decimals (for JSON/YAML), 0 for an empty whole. */
export function percentNumber(part: bigint, whole: bigint): number {
  if (whole <= 0n) return 0;
  return Number((part * 10000n) / whole) / 100;
}

/**
 * A usage bar `[####......]` of `width` cells. Cells are filled in proportion, rounded down, except
 * that any use shows at least one cell and a pool that is not full never shows all cells full.
 */
export function usageBar(part: bigint, whole: bigint, width = 20): string {
  let filled = 0;
  if (whole > 0n && part > 0n) {
    filled = Number((part * BigInt(width)) / whole);
    if (filled === 0) filled = 1;
    if (filled === width && part < whole) filled = width - 1;
  }
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** `ns/name`, the way kubectl names an object across namespaces. */
export function qualified(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}
