import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatPercent, percentNumber, renderTable, usageBar } from "../../src/cli/views/index.ts";

describe("views: formatPercent", () => {
  it("gives one decimal, rounded down, exact for huge IPv6 counts", () => {
    assert.equal(formatPercent(0n, 256n), "0.0%");
    assert.equal(formatPercent(256n, 256n), "100.0%");
    assert.equal(formatPercent(255n, 256n), "99.6%");
    assert.equal(formatPercent(512n, 65536n), "0.7%");
    assert.equal(formatPercent(1n << 79n, 1n << 80n), "50.0%");
    assert.equal(formatPercent((1n << 80n) - 1n, 1n << 80n), "99.9%");
  });

  it("shows a tiny non-zero share as <0.1% and an empty whole as -", () => {
    assert.equal(formatPercent(1n, 1n << 80n), "<0.1%");
    assert.equal(formatPercent(0n, 0n), "-");
  });

  it("percentNumber has two decimals", () => {
    assert.equal(percentNumber(1n, 3n), 33.33);
    assert.equal(percentNumber(0n, 0n), 0);
    assert.equal(percentNumber(1n << 127n, 1n << 128n), 50);
  });
});

describe("views: usageBar", () => {
  it("fills in proportion", () => {
    assert.equal(usageBar(0n, 100n, 10), "[..........]");
    assert.equal(usageBar(50n, 100n, 10), "[#####.....]");
    assert.equal(usageBar(100n, 100n, 10), "[##########]");
  });

  it("shows any use, and never shows a pool that is not full as full", () => {
    assert.equal(usageBar(1n, 1n << 128n, 10), "[#.........]");
    assert.equal(usageBar(99n, 100n, 10), "[#########.]");
    assert.equal(usageBar(0n, 0n, 4), "[....]");
  });
});

describe("views: renderTable", () => {
  it("aligns columns three spaces apart, numbers right, no trailing blanks", () => {
    const text = renderTable(
      [{ header: "NAME" }, { header: "SIZE", align: "right" }, { header: "NOTE" }],
      [
        ["a", "65536", ""],
        ["longer", "4", "x"],
      ],
    );
    assert.equal(text, "NAME      SIZE   NOTE\na        65536\nlonger       4   x\n");
  });
});
