// The README's screenshots of `kubectl ipam ui`: the real server and page in headless Chromium over
// a made-up cluster state with every kind of block (src/testing/ui-fixture.ts).
//
// Usage: tsx scripts/ui-screenshot.ts [out-dir]   (default docs/; writes ui-range.png, ui-ranges.png)

import { join, resolve } from "node:path";
import { startServer } from "../src/cli/ui/server.ts";
import { launchChromium } from "../src/testing/chromium.ts";
import { type FixtureBlock, type FixtureRange, fixtureState } from "../src/testing/ui-fixture.ts";

const outDir = resolve(process.argv[2] ?? "docs");

const nodes: FixtureRange = {
  namespace: "infra",
  name: "nodes",
  // Shrunk from 10.40.0.0/22: the last 128 addresses left the pool while a block there is held.
  ranges: ["10.40.0.0-10.40.3.127"],
  exclude: ["10.40.0.0-10.40.0.15", "10.40.2.240/28"],
  gateway: "10.40.0.1",
  reuseCooldownSeconds: 600,
  cooling: ["10.40.1.64/26@2099-01-01T00:00:00.000Z"],
};

const nodeBlocks: FixtureBlock[] = [
  { cidr: "10.40.0.64/26", holder: "rack-a" },
  { cidr: "10.40.0.128/25", holder: "rack-b" },
  { cidr: "10.40.1.0/27", holder: "rack-c" },
  { cidr: "10.40.1.32/28", holder: "bmc-1" },
  { cidr: "10.40.1.48/30", holder: "vip-1", claim: true },
  { cidr: "10.40.1.52/32", holder: "vip-2", claim: true },
  { cidr: "10.40.2.0/26", holder: "rack-d" },
  { cidr: "10.40.3.0/24", holder: "legacy" },
];

const pods: FixtureRange = { namespace: "infra", name: "pods", ranges: ["10.64.0.0/12"] };
const podBlocks: FixtureBlock[] = Array.from({ length: 300 }, (_, i) => ({
  cidr: `10.${64 + Math.floor((i * 7) / 256)}.${(i * 7) % 256}.0/24`,
  holder: `node-${i}`,
}));

const v6: FixtureRange = { namespace: "infra", name: "services-v6", ranges: ["fd00:40::/48"] };
const v6Blocks: FixtureBlock[] = [
  { cidr: "fd00:40::/56", holder: "cluster-a" },
  { cidr: "fd00:40:0:100::/64", holder: "cluster-b" },
];

const state = fixtureState([
  { range: nodes, blocks: nodeBlocks },
  { range: pods, blocks: podBlocks },
  { range: v6, blocks: v6Blocks },
]);
const server = await startServer(state, "127.0.0.1", 0);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1280 } });
  await page.goto(`${server.url}?range=${encodeURIComponent("infra/nodes")}`);
  await page.locator("#map[data-items]").waitFor();
  const box = await page.locator("#map").boundingBox();
  if (box) await page.mouse.move(box.x + box.width * 0.656, box.y + box.width * 0.156);
  await page.locator("#details[data-block]").waitFor();
  await page.screenshot({ path: join(outDir, "ui-range.png") });
  await page.goto(server.url);
  await page.locator("#ranges tbody tr").first().waitFor();
  await page.screenshot({
    path: join(outDir, "ui-ranges.png"),
    clip: { x: 0, y: 0, width: 1280, height: 320 },
  });
  process.stdout.write(`wrote ${join(outDir, "ui-range.png")} and ${join(outDir, "ui-ranges.png")}\n`);
} finally {
  await browser.close();
  await server.close();
  state.close();
}
