// The address map: a canvas with the pool in nested squares (the server's layout: items are cell
// rectangles). Kinds differ by pattern and label as well as colour. Pointer and keyboard select an
// item; its details go to an aria-live region. A cell → item index makes hit tests O(1).

import { count, el, holderName, hueOf } from "./format.js";

export const KIND_LABELS = {
  allocated: "allocated",
  pending: "pending removal",
  free: "free",
  excluded: "excluded",
  gateway: "gateway",
  cooling: "cooling down",
  mixed: "small blocks, summed up (zoom in)",
  outside: "not part of the pool",
};

const TILE = 8;

function pattern(ctx, background, draw) {
  const tile = document.createElement("canvas");
  tile.width = TILE;
  tile.height = TILE;
  const t = tile.getContext("2d");
  if (background) {
    t.fillStyle = background;
    t.fillRect(0, 0, TILE, TILE);
  }
  draw(t);
  return ctx.createPattern(tile, "repeat");
}

function lines(color, width, cross) {
  return (t) => {
    t.strokeStyle = color;
    t.lineWidth = width;
    t.beginPath();
    t.moveTo(0, TILE);
    t.lineTo(TILE, 0);
    if (cross) {
      t.moveTo(0, 0);
      t.lineTo(TILE, TILE);
    }
    t.stroke();
  };
}

function dots(color, radius) {
  return (t) => {
    t.fillStyle = color;
    t.beginPath();
    t.arc(TILE / 2, TILE / 2, radius, 0, 2 * Math.PI);
    t.fill();
  };
}

/** Fills and patterns per kind; also drawn into the legend's swatches. */
export function styles(ctx) {
  return {
    free: { fill: "#fbfbf8" },
    excluded: { fill: pattern(ctx, "#d9d9d9", lines("#666", 1.5, false)) },
    gateway: { fill: "#1f1f1f", text: "#fff" },
    cooling: { fill: pattern(ctx, "#dcecff", dots("#2f6fb3", 1.6)) },
    pendingOverlay: pattern(ctx, undefined, lines("rgba(0,0,0,0.75)", 1.5, true)),
    mixedOverlay: pattern(ctx, undefined, dots("rgba(0,0,0,0.45)", 1)),
    outside: { fill: pattern(ctx, "#ececec", lines("#c8c8c8", 1, true)) },
  };
}

/** A holder's colour: hue and one of three lightness steps from its name (stable across updates). */
export function holderColor(holder, lightness) {
  const hash = hueOf(`${holder.kind}/${holder.namespace}/${holder.name}`);
  const hue = (hash * 7) % 360;
  return `hsl(${hue} 70% ${lightness ?? 50 + (hash % 3) * 9}%)`;
}

function bigRatio(part, whole) {
  if (whole === 0n) return 0;
  return Number((part * 10000n) / whole) / 10000;
}

function addressesOf(cidr) {
  const [address, prefix] = cidr.split("/");
  const width = address.includes(":") ? 128 : 32;
  return (1n << BigInt(width - Number(prefix))).toString();
}

export class AddressMap {
  constructor(canvas, details, navigate) {
    this.canvas = canvas;
    this.details = details;
    this.navigate = navigate;
    this.view = undefined;
    this.focus = -1;
    this.base = document.createElement("canvas");
    canvas.addEventListener("mousemove", (e) => this.select(this.itemAt(e.offsetX, e.offsetY), false));
    canvas.addEventListener("click", (e) => this.activate(this.itemAt(e.offsetX, e.offsetY)));
    canvas.addEventListener("keydown", (e) => this.key(e));
    canvas.addEventListener("focus", () => {
      if (this.focus < 0 && this.view?.items.length) this.select(0, true);
    });
    window.addEventListener("resize", () => this.view && this.draw());
  }

  /** Shows a view (GET /api/range); keeps the selected block selected when it is still there. */
  show(view) {
    const selected = this.view?.items[this.focus]?.[6];
    this.view = view;
    const { width, height } = view.grid;
    this.owner = new Int32Array(width * height).fill(-1);
    view.items.forEach(([x, y, w, h], index) => {
      for (let row = y; row < y + h; row++) this.owner.fill(index, row * width + x, row * width + x + w);
    });
    this.canvas.dataset.items = String(view.items.length);
    this.canvas.dataset.grid = `${width}x${height}`;
    this.canvas.setAttribute(
      "aria-label",
      `Address map of ${view.view || "the whole pool"}: ${view.items.length} blocks drawn`,
    );
    this.draw();
    this.focus = selected === undefined ? -1 : view.items.findIndex((item) => item[6] === selected);
    this.present();
    if (this.focus >= 0) this.describe(this.focus);
    else {
      this.details.dataset.block = "";
      this.details.textContent = "Point at the map or focus it and use the arrow keys.";
    }
  }

  draw() {
    const { width, height } = this.view.grid;
    const available = this.canvas.parentElement.clientWidth || 800;
    const cssWidth = Math.max(256, Math.min(available, 1024));
    const cell = cssWidth / width;
    const cssHeight = cell * height;
    const ratio = window.devicePixelRatio || 1;
    for (const c of [this.canvas, this.base]) {
      c.width = Math.round(cssWidth * ratio);
      c.height = Math.round(cssHeight * ratio);
    }
    this.canvas.style.width = `${cssWidth}px`;
    this.canvas.style.height = `${cssHeight}px`;
    this.cell = cell;
    const ctx = this.base.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.paint(ctx, cell, cssWidth, cssHeight);
    this.present();
  }

  paint(ctx, cell, cssWidth, cssHeight) {
    const style = styles(ctx);
    ctx.fillStyle = style.outside.fill;
    ctx.fillRect(0, 0, cssWidth, cssHeight);
    const { kinds, holders } = this.view;
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "top";
    for (const [x, y, w, h, k, holder, cidr, detail] of this.view.items) {
      const kind = kinds[k];
      const px = x * cell;
      const py = y * cell;
      const pw = w * cell;
      const ph = h * cell;
      ctx.fillStyle = this.fillOf(style, kind, holders[holder], detail);
      ctx.fillRect(px, py, pw, ph);
      if (kind === "pending" || kind === "mixed") {
        ctx.fillStyle = kind === "pending" ? style.pendingOverlay : style.mixedOverlay;
        ctx.fillRect(px, py, pw, ph);
      }
      if (pw >= 6 && ph >= 6) {
        ctx.strokeStyle = kind === "free" ? "rgba(0,0,0,0.12)" : "rgba(0,0,0,0.35)";
        ctx.lineWidth = 1;
        ctx.strokeRect(px + 0.5, py + 0.5, pw - 1, ph - 1);
      }
      if (pw >= 90 && ph >= 18) this.label(ctx, px, py, pw, ph, kind, cidr, holders[holder], style);
    }
  }

  fillOf(style, kind, holder, detail) {
    if (kind === "allocated" || kind === "pending") return holder ? holderColor(holder) : "#9a9a9a";
    if (kind !== "mixed") return style[kind].fill;
    let total = 0n;
    let free = 0n;
    for (const [name, value] of Object.entries(detail.counts)) {
      total += BigInt(value);
      if (name === "free") free += BigInt(value);
    }
    if (free === total) return style.free.fill;
    // Any use shows clearly (fragmentation is what the map is for), more use darker.
    const used = 1 - bigRatio(free, total);
    if (holder) return holderColor(holder, Math.round(72 - 22 * used));
    return `hsl(30 10% ${Math.round(78 - 40 * used)}%)`;
  }

  label(ctx, px, py, pw, ph, kind, cidr, holder, style) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(px, py, pw, ph);
    ctx.clip();
    const text = kind === "allocated" || kind === "pending" ? holderName(holder) || cidr : KIND_LABELS[kind];
    ctx.fillStyle = kind === "gateway" ? style.gateway.text : "#000";
    const lines = [cidr];
    if (ph >= 34) lines.push(text);
    lines.forEach((line, i) => {
      const width = ctx.measureText(line).width;
      if (kind !== "gateway") {
        ctx.fillStyle = "rgba(255,255,255,0.85)";
        ctx.fillRect(px + 3, py + 3 + i * 15, Math.min(width + 4, pw - 6), 14);
        ctx.fillStyle = "#000";
      }
      ctx.fillText(line, px + 5, py + 4 + i * 15);
    });
    ctx.restore();
  }

  /** The base drawing plus the selection's outline. */
  present() {
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.base, 0, 0);
    const item = this.view.items[this.focus];
    if (!item) return;
    const ratio = window.devicePixelRatio || 1;
    const [x, y, w, h] = item;
    const c = this.cell * ratio;
    ctx.lineWidth = 3 * ratio;
    ctx.strokeStyle = "#000";
    ctx.strokeRect(x * c, y * c, Math.max(w * c, 4), Math.max(h * c, 4));
    ctx.lineWidth = 1.5 * ratio;
    ctx.strokeStyle = "#ffd400";
    ctx.strokeRect(x * c, y * c, Math.max(w * c, 4), Math.max(h * c, 4));
  }

  itemAt(offsetX, offsetY) {
    if (!this.view) return -1;
    const { width, height } = this.view.grid;
    const x = Math.floor(offsetX / this.cell);
    const y = Math.floor(offsetY / this.cell);
    if (x < 0 || y < 0 || x >= width || y >= height) return -1;
    return this.owner[y * width + x];
  }

  select(index, fromKeyboard) {
    if (index === this.focus && !fromKeyboard && this.details.dataset.block) return;
    this.focus = index;
    this.present();
    this.describe(index);
  }

  /** Click or Enter: zoom into a summed-up cell or a block larger than a cell. */
  activate(index) {
    const target = this.zoomTarget(index);
    if (target) this.navigate(target);
    else this.select(index, true);
  }

  zoomTarget(index) {
    const item = this.view?.items[index];
    if (!item) return undefined;
    const [, , w, h, k, , cidr] = item;
    const mixed = this.view.kinds[k] === "mixed";
    if (!mixed && w * h === 1) return undefined;
    if (!mixed && this.view.grid.cellSize === "1") return undefined;
    return cidr === this.view.view ? undefined : cidr;
  }

  key(event) {
    if (!this.view || this.view.items.length === 0) return;
    const items = this.view.items;
    const current = items[this.focus];
    let next;
    const { width, height } = this.view.grid;
    const at = (x, y) => (x >= 0 && y >= 0 && x < width && y < height ? this.owner[y * width + x] : -1);
    if (event.key === "ArrowRight") next = Math.min(this.focus + 1, items.length - 1);
    else if (event.key === "ArrowLeft") next = Math.max(this.focus - 1, 0);
    else if (event.key === "ArrowDown" && current) next = at(current[0], current[1] + current[3]);
    else if (event.key === "ArrowUp" && current) next = at(current[0], current[1] - 1);
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = items.length - 1;
    else if (event.key === "Enter") return this.activate(this.focus);
    else if (event.key === "Escape" && this.view.parent !== undefined) return this.navigate(this.view.parent);
    else return;
    event.preventDefault();
    if (next !== undefined && next >= 0) this.select(next, true);
  }

  /** Selects the block of holder `index` (from the holder list). */
  selectHolder(index) {
    const found = this.view.items.findIndex((item) => item[5] === index);
    if (found >= 0) {
      this.select(found, true);
      this.canvas.focus({ preventScroll: false });
    }
    return found >= 0;
  }

  describe(index) {
    const item = this.view.items[index];
    this.details.replaceChildren();
    if (!item) {
      this.details.dataset.block = "";
      this.details.append(el("p", { text: index === -1 ? KIND_LABELS.outside : "" }));
      return;
    }
    const [, , , , k, holderIndex, cidr, detail] = item;
    const kind = this.view.kinds[k];
    const holder = this.view.holders[holderIndex];
    this.details.dataset.block = cidr;
    const rows = [el("p", {}, el("strong", { class: "block", text: cidr }), ` — ${KIND_LABELS[kind]}`)];
    if (kind === "mixed") rows.push(...this.tileRows(detail, holder));
    else {
      rows.push(el("p", { text: `${count(addressesOf(cidr))} addresses` }));
      if (holder) rows.push(this.holderRow(holder));
      if (kind === "cooling" && detail)
        rows.push(el("p", { text: `free again at ${new Date(detail).toLocaleString()}` }));
      else if (detail) rows.push(el("p", { text: `part of ${detail}, which reaches outside the pool` }));
    }
    const target = this.zoomTarget(index);
    if (target) {
      const link = el("a", { href: "#", text: `Zoom into ${target}` });
      link.addEventListener("click", (e) => {
        e.preventDefault();
        this.navigate(target);
      });
      rows.push(el("p", {}, link));
    }
    this.details.append(...rows);
  }

  holderRow(holder) {
    const status = holder.status ? ` (${holder.status})` : "";
    const p = el("p", { class: "holder" }, "held by ", el("strong", { text: holderName(holder) }), status);
    if (holder.message) p.append(el("br"), el("span", { class: "message", text: holder.message }));
    return p;
  }

  tileRows(detail, holder) {
    const list = el("ul", { class: "counts" });
    for (const [kind, value] of Object.entries(detail.counts)) {
      list.append(el("li", { text: `${KIND_LABELS[kind]}: ${count(value)} addresses` }));
    }
    const rows = [
      el("p", { text: `${detail.regions} blocks smaller than one cell; ${detail.blocks} held` }),
      list,
    ];
    if (holder) rows.push(this.holderRow(holder));
    return rows;
  }
}
