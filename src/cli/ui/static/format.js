// Formatting shared by the list and the map. Address counts arrive as exact decimal strings and stay
// BigInt here (IPv6 pools exceed 2^53).

const GROUPED = new Intl.NumberFormat("en-US");

/** "16777216" → "16,777,216"; counts of 10^15 and more as powers of two when exact, else "≈ 1.2e+20". */
export function count(text) {
  const value = BigInt(text);
  if (value < 1_000_000_000_000_000n) return GROUPED.format(value);
  const bits = value.toString(2);
  if (/^10*$/.test(bits)) return `2^${bits.length - 1}`;
  return `≈ ${Number(value).toExponential(2)}`;
}

/** Parts per million → "12.5 %". */
export function percent(ppm) {
  return `${(ppm / 10000).toFixed(ppm > 0 && ppm < 1000 ? 2 : 1)} %`;
}

/** A stable hue for a holder, so its blocks keep their colour across updates. */
export function hueOf(text) {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0) % 360;
}

export function holderName(holder) {
  if (!holder) return "";
  const kind = holder.kind === "IPAddressClaim" ? "claim" : holder.kind === "IPAMRequest" ? "request" : "";
  const name = holder.namespace ? `${holder.namespace}/${holder.name}` : holder.name;
  return kind ? `${kind} ${name}` : name;
}

/** Creates an element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

export function rangeHref(key, block) {
  const params = new URLSearchParams({ range: key });
  if (block) params.set("block", block);
  return `?${params}`;
}
