// Benchmark of `kubectl ipam ui` (npm run bench:ui): a 10.0.0.0/8 pool with 10,000 blocks of /24 to
// /32 at random places, served by the real server and drawn by the real page in headless Chromium.
// The cluster state is made up in memory (src/testing/ui-fixture.ts): this measures the UI — model,
// layout, JSON, fetch, drawing — not the API server. Prints the server's view time, the time from
// navigation to the drawn map (and how much of it is reading and drawing), and the page's redraw time
// after a change (each the median of runs). Every read is a cold one: a change comes first.

import { performance } from "node:perf_hooks";
import { startServer } from "../src/cli/ui/server.ts";
import { Allocator, Cidr } from "../src/ipam/index.ts";
import { launchChromium } from "../src/testing/chromium.ts";
import {
  type FixtureBlock,
  type FixtureRange,
  fixtureState,
  recordObject,
} from "../src/testing/ui-fixture.ts";

const BLOCKS = Number(process.env.BENCH_UI_BLOCKS ?? 10_000);
const RUNS = 5;

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function blocks(count: number): FixtureBlock[] {
  const random = seeded(20261201);
  const pool = Cidr.parse("10.0.0.0/8");
  const allocator = new Allocator({ family: 4, blocks: [pool] });
  const out: FixtureBlock[] = [];
  while (out.length < count) {
    const prefix = 24 + Math.floor(random() * 9);
    const cidr = Cidr.of(4, pool.start + BigInt(Math.floor(random() * 2 ** 24)), prefix);
    try {
      allocator.reserve(cidr);
      out.push({ cidr: cidr.toString(), holder: `node-${out.length}` });
    } catch {
      // Taken: draw again.
    }
  }
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const range: FixtureRange = { namespace: "bench", name: "pool", ranges: ["10.0.0.0/8"] };
const state = fixtureState([{ range, blocks: blocks(BLOCKS) }]);

const viewTimes: number[] = [];
let bytes = 0;
let items = 0;
for (let i = 0; i < RUNS; i++) {
  state.putRecord(recordObject(range, { cidr: `10.255.255.${i}/32`, holder: `extra-${i}` }));
  const started = performance.now();
  const result = state.view("bench/pool", undefined);
  const json = JSON.stringify(result.ok ? result.view : result);
  viewTimes.push(performance.now() - started);
  bytes = json.length;
  items = result.ok ? result.view.items.length : 0;
}

const server = await startServer(state, "127.0.0.1", 0);
const browser = await launchChromium();
const loads: number[] = [];
const reads: number[] = [];
const draws: number[] = [];
const redraws: number[] = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
    // A change first, so the server computes the view anew (no cached view).
    state.putRecord(recordObject(range, { cidr: `10.255.253.${i}/32`, holder: `cold-${i}` }));
    const started = performance.now();
    await page.goto(`${server.url}?range=bench%2Fpool`);
    await page.locator("#map[data-items]").waitFor();
    loads.push(performance.now() - started);
    const body = page.locator("body");
    const read = Number(await body.getAttribute("data-read-ms"));
    reads.push(read);
    draws.push(Number(await body.getAttribute("data-render-ms")) - read);
    const before = await page.locator("body").getAttribute("data-updates");
    state.putRecord(recordObject(range, { cidr: `10.255.254.${i}/32`, holder: `live-${i}` }));
    await page.locator(`body:not([data-updates="${before}"])`).waitFor();
    redraws.push(Number(await page.locator("body").getAttribute("data-render-ms")));
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
  state.close();
}

const ms = (value: number) => `${value.toFixed(0)} ms`;
process.stdout.write(
  [
    `kubectl ipam ui benchmark: 10.0.0.0/8 with ${BLOCKS} blocks (/24–/32), ${RUNS} runs, medians`,
    `  map items drawn          ${items} (grid 256 × 256 cells of 256 addresses), JSON ${(bytes / 1024).toFixed(0)} KiB`,
    `  server: view (model, layout, JSON)   ${ms(median(viewTimes))}`,
    `  page: navigation → map drawn         ${ms(median(loads))}`,
    `    of it: read (server, transfer, JSON parse) ${ms(median(reads))}, drawing ${ms(median(draws))}`,
    `  page: change → map redrawn           ${ms(median(redraws))} (read + parse + draw, after the event)`,
    "",
  ].join("\n"),
);
