// The holder list with search: one row per held block (and per waiting holder). Long lists show the
// first matches only, so the page stays fast with 10,000 holders.

import { el, holderName } from "./format.js";
import { holderColor } from "./map.js";

const SHOWN = 300;

export class HolderList {
  constructor(table, search, counter, onPick) {
    this.body = table.querySelector("tbody");
    this.search = search;
    this.counter = counter;
    this.onPick = onPick;
    this.holders = [];
    search.addEventListener("input", () => this.render());
  }

  show(holders) {
    this.holders = holders;
    this.render();
  }

  render() {
    const query = this.search.value.trim().toLowerCase();
    const matches = [];
    this.holders.forEach((holder, index) => {
      const text = `${holder.kind} ${holder.namespace}/${holder.name} ${holder.cidr} ${holder.state} ${holder.status}`;
      if (!query || text.toLowerCase().includes(query)) matches.push(index);
    });
    const rows = matches.slice(0, SHOWN).map((index) => this.row(this.holders[index], index));
    this.body.replaceChildren(...rows);
    const more = matches.length > SHOWN ? ` (first ${SHOWN} shown: refine the search)` : "";
    this.counter.textContent = `${matches.length} of ${this.holders.length} holders${more}`;
  }

  row(holder, index) {
    const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.background = holderColor(holder);
    const name = holderName(holder);
    const cell = holder.cidr
      ? el("button", {
          type: "button",
          class: "link",
          text: holder.cidr,
          "aria-label": `show ${holder.cidr} of ${name} on the map`,
        })
      : el("span", { text: "—" });
    if (holder.cidr) cell.addEventListener("click", () => this.onPick(index));
    return el(
      "tr",
      { "data-holder": `${holder.namespace}/${holder.name}`, "data-state": holder.state },
      el("th", { scope: "row" }, swatch, name),
      el("td", {}, cell),
      el("td", { text: holder.state }),
      el("td", { text: holder.status, title: holder.message || undefined }),
    );
  }
}
