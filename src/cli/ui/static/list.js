// The ranges list: one row per range of either kind, with a usage bar that carries its number.

import { count, el, percent, rangeHref } from "./format.js";

function usageBar(range) {
  const label = `${percent(range.usedPpm)} allocated`;
  return el(
    "div",
    {
      class: "bar",
      role: "meter",
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": range.usedPpm / 10000,
      "aria-label": label,
    },
    el("span", { class: "bar-fill", style: undefined, "data-ppm": range.usedPpm }),
    el("span", { class: "bar-text", text: label }),
  );
}

function row(range) {
  const name = range.kind === "ClusterIPAMRange" ? range.name : `${range.namespace}/${range.name}`;
  const largest = range.largestFree ? `${range.largestFree} (${count(range.largestFreeAddresses)})` : "none";
  const tr = el(
    "tr",
    { "data-range": range.key },
    el("th", { scope: "row" }, el("a", { href: rangeHref(range.key), text: name })),
    el("td", { text: range.kind === "ClusterIPAMRange" ? "cluster" : "namespaced" }),
    el("td", { text: range.family }),
    el("td", { text: range.state, title: range.message || undefined }),
    el("td", { class: "num", text: count(range.size) }),
    el("td", { class: "num", text: count(range.allocated) }),
    el("td", { class: "num", text: count(range.free) }),
    el("td", { text: largest }),
    el("td", {}, usageBar(range)),
  );
  return tr;
}

/** Renders `data` (GET /api/ranges) into the list section. */
export function renderList(data) {
  const body = document.querySelector("#ranges tbody");
  body.replaceChildren(...data.ranges.map(row));
  for (const fill of body.querySelectorAll(".bar-fill")) {
    fill.style.width = `${Number(fill.dataset.ppm) / 10000}%`;
  }
  document.getElementById("list-empty").hidden = data.ranges.length > 0;
  document.getElementById("ranges").hidden = data.ranges.length === 0;
}
