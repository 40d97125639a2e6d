// The page: the ranges list, or one range (?range=<ns>/<name> or ?range=<cluster range>, &block= to
// zoom). Server-sent events name the ranges that changed; the page then reads what it shows again
// (one read at a time, the latest wins) — no reload.

import { count, el, rangeHref } from "./format.js";
import { HolderList } from "./holders.js";
import { renderList } from "./list.js";
import { AddressMap, KIND_LABELS, styles } from "./map.js";

const $ = (id) => document.getElementById(id);

let route = readRoute();
let map;
let holders;
let loading = false;
let again = false;
let updates = 0;
/** A holder picked in the list whose block needed a zoom: select it once the zoomed map is shown. */
let pickedHolder;

function readRoute() {
  const params = new URLSearchParams(location.search);
  return { range: params.get("range") ?? "", block: params.get("block") ?? "" };
}

function showWarnings(warnings = []) {
  $("warnings").replaceChildren(...warnings.map((w) => el("li", { text: w })));
}

async function read(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ?? `${response.status} ${response.statusText}`);
  return data;
}

function facts(range) {
  const items = [
    ["Kind", range.kind],
    ["Family", range.family],
    ["State", range.message ? `${range.state}: ${range.message}` : range.state],
    ["Ranges", range.ranges.join(", ") || "(none)"],
    ["Size", count(range.size)],
    ["Allocated", count(range.allocated)],
    ["Free", count(range.free)],
    ["Largest free block", range.largestFree || "none"],
  ];
  if (range.exclude.length)
    items.push(["Excluded", `${range.exclude.join(", ")} (${count(range.excluded)})`]);
  if (range.gateway) items.push(["Gateway", range.gateway]);
  if (range.cooling !== "0") items.push(["Cooling down", count(range.cooling)]);
  if (range.pending !== "0") items.push(["Pending removal", count(range.pending)]);
  return items.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]);
}

function renderRange(view) {
  const r = view.range;
  $("range-title").textContent =
    `${r.kind} ${r.kind === "ClusterIPAMRange" ? r.name : `${r.namespace}/${r.name}`}`;
  document.title = `${r.name} — kubipam`;
  $("range-error").hidden = true;
  $("range-facts").replaceChildren(...facts(r));
  $("zoom-path").textContent = view.view ? `› ${r.name} › ${view.view}` : `› ${r.name}`;
  const out = $("zoom-out");
  out.hidden = view.parent === undefined;
  if (view.parent !== undefined) out.href = rangeHref(route.range, view.parent);
  map.show(view);
  holders.show(view.holders);
  if (pickedHolder !== undefined) map.selectHolder(pickedHolder);
  pickedHolder = undefined;
}

function legend() {
  const items = ["allocated", "pending", "free", "excluded", "gateway", "cooling", "mixed", "outside"];
  $("legend").replaceChildren(
    ...items.map((kind) => {
      const swatch = document.createElement("canvas");
      swatch.width = 24;
      swatch.height = 16;
      swatch.setAttribute("aria-hidden", "true");
      const ctx = swatch.getContext("2d");
      const s = styles(ctx);
      ctx.fillStyle =
        kind === "allocated" || kind === "pending"
          ? "hsl(200 70% 62%)"
          : kind === "mixed"
            ? "#bbb"
            : s[kind].fill;
      ctx.fillRect(0, 0, 24, 16);
      if (kind === "pending" || kind === "mixed") {
        ctx.fillStyle = kind === "pending" ? s.pendingOverlay : s.mixedOverlay;
        ctx.fillRect(0, 0, 24, 16);
      }
      ctx.strokeStyle = "#777";
      ctx.strokeRect(0.5, 0.5, 23, 15);
      return el(
        "li",
        {},
        swatch,
        ` ${KIND_LABELS[kind]}${kind === "allocated" ? " (a colour per holder)" : ""}`,
      );
    }),
  );
}

async function refresh() {
  if (loading) {
    again = true;
    return;
  }
  loading = true;
  try {
    do {
      again = false;
      const started = performance.now();
      if (route.range) {
        const params = new URLSearchParams({ range: route.range });
        if (route.block) params.set("block", route.block);
        try {
          const view = await read(`api/range?${params}`);
          document.body.dataset.readMs = (performance.now() - started).toFixed(1);
          showWarnings(view.warnings);
          renderRange(view);
        } catch (error) {
          $("range-error").textContent = error.message;
          $("range-error").hidden = false;
        }
      } else {
        const data = await read("api/ranges");
        showWarnings(data.warnings);
        renderList(data);
      }
      updates++;
      // For the benchmark and the curious: how long the last read took, from request to drawn
      // (readMs: until the JSON was parsed).
      document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
      document.body.dataset.updates = String(updates);
    } while (again);
  } finally {
    loading = false;
  }
}

/** Shows holder `index` on the map, zooming in when its block is summed up in a cell. */
function pick(index) {
  const zoom = map.view?.holders[index]?.zoom;
  if (!zoom) {
    map.selectHolder(index);
    return;
  }
  pickedHolder = index;
  navigate(zoom);
}

function navigate(block) {
  history.pushState(null, "", rangeHref(route.range, block));
  route = readRoute();
  void refresh();
}

function connect() {
  const events = new EventSource("api/events");
  events.addEventListener("open", () => {
    $("live").textContent = "live: following the cluster";
    void refresh();
  });
  events.addEventListener("error", () => {
    $("live").textContent = "disconnected: retrying…";
  });
  events.addEventListener("change", (event) => {
    const keys = JSON.parse(event.data);
    if (!route.range || keys.includes(route.range) || keys.includes("")) void refresh();
  });
}

function start() {
  $("list").hidden = Boolean(route.range);
  $("range").hidden = !route.range;
  map = new AddressMap($("map"), $("details"), navigate);
  holders = new HolderList($("holders"), $("holder-search"), $("holder-count"), pick);
  legend();
  $("zoom-out").addEventListener("click", (e) => {
    e.preventDefault();
    if (map.view?.parent !== undefined) navigate(map.view.parent);
  });
  window.addEventListener("popstate", () => {
    route = readRoute();
    void refresh();
  });
  connect();
}

start();
