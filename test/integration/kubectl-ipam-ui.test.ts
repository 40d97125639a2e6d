// `kubectl ipam ui` in real headless Chromium against the real control plane, with the controller
// allocating: the ranges list, a range's map, hover and keyboard details, live updates after a new
// request and after a release (no reload), and an IPv6 /48 pool. A missing Chromium fails the file
// with the install instructions (src/testing/chromium.ts).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import type { IPAMRequest } from "../../src/api/types.ts";
import { type RunningUi, startUi } from "../../src/cli/ui/command.ts";
import type { RangeView } from "../../src/cli/ui/view-data.ts";
import { KubeClient } from "../../src/runtime/kube.ts";
import { launchChromium } from "../../src/testing/chromium.ts";
import { isReady } from "../../src/testing/status.ts";
import { useCluster } from "../harness/index.ts";
import { type IpamFixture, ipamFixture, runControllerInProcess } from "../harness/ipam.ts";

const PLUGIN = fileURLToPath(new URL("../../src/cli/kubectl-ipam.ts", import.meta.url));

/** Live updates must reach the page well within this (the contract says a second; CI is slow). */
const LIVE_DEADLINE_MS = 10_000;

const cluster = await useCluster();

describe("kubectl ipam ui in headless Chromium", () => {
  let ns: string;
  let fx: IpamFixture;
  let controller: Awaited<ReturnType<typeof runControllerInProcess>>;
  let client: KubeClient;
  let ui: RunningUi;
  let browser: Browser;
  let page: Page;
  const cidrs = new Map<string, string>();
  /** Script errors and console errors of the page (CSP violations among them). */
  const pageErrors: string[] = [];

  async function request(name: string, range: string, size?: number): Promise<IPAMRequest> {
    await fx.request(name, { ipam: { name: range }, ...(size ? { size } : {}) });
    const ready = await fx.settled(name, isReady);
    cidrs.set(name, ready.status?.cidr ?? "");
    return ready;
  }

  /** The map the server gives the page, to find where a block is drawn. */
  async function viewOf(range: string, block?: string): Promise<RangeView> {
    const query = new URLSearchParams({ range, ...(block ? { block } : {}) });
    const response = await fetch(`${ui.url}api/range?${query}`);
    assert.equal(response.status, 200);
    return (await response.json()) as RangeView;
  }

  /** Where the middle of `cidr`'s rectangle is on the canvas (the page's layout is the server's). */
  async function positionOf(range: string, cidr: string, block?: string): Promise<{ x: number; y: number }> {
    const view = await viewOf(range, block);
    const item = view.items.find((i) => i[6] === cidr);
    assert.ok(item, `${cidr} is an item of the map`);
    const box = await page.locator("#map").boundingBox();
    assert.ok(box);
    // The box has the 1px border; positions are relative to the padding box.
    const cell = (box.width - 2) / view.grid.width;
    return { x: (item[0] + item[2] / 2) * cell, y: (item[1] + item[3] / 2) * cell };
  }

  /** Moves the mouse over the middle of `cidr` on the map (scrolled into view). */
  async function hover(range: string, cidr: string): Promise<void> {
    await page.locator("#map").hover({ position: await positionOf(range, cidr) });
  }

  before(async () => {
    browser = await launchChromium();
    ns = await cluster.createNamespace("ui");
    fx = ipamFixture(cluster, ns);
    controller = await runControllerInProcess(cluster);
    await fx.range("pods", { ranges: ["10.20.0.0/16"], chunkSize: 24 });
    await fx.range("v6", { ranges: ["fd00:20::/48"], chunkSize: 64 });
    await fx.range("edge", {
      ranges: ["10.30.0.0/24"],
      chunkSize: 28,
      exclude: ["10.30.0.240/28"],
      gateway: "10.30.0.1",
      reuseCooldownSeconds: 600,
    });
    await request("node-a", "pods");
    await request("node-b", "pods", 20);
    await request("net-a", "v6");
    await request("host-a", "v6", 128);
    client = new KubeClient(cluster.kubeConfig);
    ui = await startUi(client, { all: false, namespace: ns });
    page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(`${message.text()} (${message.location().url})`);
    });
  });

  after(async () => {
    await page?.close();
    await browser?.close();
    await ui?.close();
    client?.close();
    await controller?.stop();
  });

  it("serves on 127.0.0.1 and refuses other hosts and writes", async () => {
    assert.match(ui.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const post = await fetch(`${ui.url}api/ranges`, { method: "POST" });
    assert.equal(post.status, 405);
    const { request: raw } = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      const req = raw(`${ui.url}api/ranges`, { headers: { Host: "attacker.example:80" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 421, "a foreign Host header (DNS rebinding) is refused");
  });

  it("lists the ranges with family, size, usage and largest free block", async () => {
    await page.goto(ui.url);
    const pods = page.locator(`#ranges tr[data-range="${ns}/pods"]`);
    await pods.waitFor();
    const cells = await pods.locator("th, td").allInnerTexts();
    // Range, kind, family, state, size, allocated, free, largest free block, usage.
    assert.equal(cells[0], `${ns}/pods`);
    assert.equal(cells[2], "IPv4");
    assert.equal(cells[4], "65,536");
    assert.equal(cells[5], (256 + 4096).toLocaleString("en-US"));
    assert.equal(cells[6], (65536 - 256 - 4096).toLocaleString("en-US"));
    assert.equal(cells[7], "/17 (32,768)");
    assert.match(cells[8] ?? "", /6\.6 % allocated/);
    const v6 = await page.locator(`#ranges tr[data-range="${ns}/v6"] td`).allInnerTexts();
    assert.equal(v6[1], "IPv6");
    assert.equal(v6[3], "2^80");
  });

  it("draws a range's map and shows a block's holder on hover", async () => {
    await page.goto(`${ui.url}?range=${encodeURIComponent(`${ns}/pods`)}`);
    await page.locator("#map[data-items]").waitFor();
    assert.equal(await page.locator("#map").getAttribute("data-grid"), "256x256");
    assert.equal(await page.locator(`#holders tr[data-holder="${ns}/node-a"]`).count(), 1);
    await hover(`${ns}/pods`, cidrs.get("node-b")!);
    const details = page.locator("#details", { hasText: cidrs.get("node-b")! });
    await details.waitFor();
    const text = (await details.textContent()) ?? "";
    assert.match(text, /allocated/);
    assert.match(text, new RegExp(`request ${ns}/node-b \\(Ready\\)`));
    assert.match(text, /4,096 addresses/);
    // The holder list filters as one types.
    await page.locator("#holder-search").fill("node-b");
    await page.locator("#holder-count", { hasText: "1 of 2 holders" }).waitFor();
    assert.equal(await page.locator("#holders tbody tr").count(), 1);
    assert.equal(await page.locator("#holders tbody tr").getAttribute("data-holder"), `${ns}/node-b`);
    await page.locator("#holder-search").fill("");
    // Free space is drawn too: the rest of the /16 beside the two blocks.
    await hover(`${ns}/pods`, "10.20.128.0/17");
    await page.locator("#details", { hasText: "10.20.128.0/17 — free" }).waitFor();
  });

  it("moves through the blocks with the keyboard", async () => {
    await page.locator("#map").focus();
    await page.keyboard.press("Home");
    await page.locator('#details[data-block="10.20.0.0/24"]').waitFor();
    await page.keyboard.press("ArrowRight");
    const next = await page.locator("#details").getAttribute("data-block");
    assert.notEqual(next, "10.20.0.0/24");
    assert.match(next ?? "", /^10\.20\./);
  });

  it("follows a new request and a release without reloading", async () => {
    // A mark in the page's global scope: a reload would lose it.
    await page.evaluate("window.notReloaded = true");
    await request("node-c", "pods");
    const cidr = cidrs.get("node-c")!;
    await page
      .locator(`#holders tr[data-holder="${ns}/node-c"]`)
      .filter({ hasText: cidr })
      .waitFor({ timeout: LIVE_DEADLINE_MS });
    await hover(`${ns}/pods`, cidr);
    const allocated = page.locator("#details", { hasText: `${cidr} — allocated` });
    await allocated.waitFor({ timeout: LIVE_DEADLINE_MS });

    await fx.deleteRequest("node-c");
    await page
      .locator(`#holders tr[data-holder="${ns}/node-c"]`)
      .waitFor({ state: "detached", timeout: LIVE_DEADLINE_MS });
    // The released /24 is free space again.
    await allocated.waitFor({ state: "detached", timeout: LIVE_DEADLINE_MS });
    const view = await viewOf(`${ns}/pods`);
    assert.ok(!view.items.some((i) => i[6] === cidr && view.kinds[i[4]] === "allocated"));
    assert.equal(await page.evaluate("window.notReloaded"), true);
  });

  it("draws exclusions, the gateway and a released block cooling down", async () => {
    await request("edge-a", "edge");
    const block = cidrs.get("edge-a")!;
    assert.equal(block, "10.30.0.16/28", "the /28 with the gateway is skipped");
    await page.goto(`${ui.url}?range=${encodeURIComponent(`${ns}/edge`)}`);
    await page.locator("#map[data-items]").waitFor();
    await hover(`${ns}/edge`, "10.30.0.1/32");
    await page.locator("#details", { hasText: "10.30.0.1/32 — gateway" }).waitFor();
    await hover(`${ns}/edge`, "10.30.0.240/28");
    await page.locator("#details", { hasText: "10.30.0.240/28 — excluded" }).waitFor();
    await fx.deleteRequest("edge-a");
    await page.locator("#range-facts", { hasText: "Cooling down" }).waitFor({ timeout: LIVE_DEADLINE_MS });
    await hover(`${ns}/edge`, block);
    await page
      .locator("#details", { hasText: `${block} — cooling down` })
      .waitFor({ timeout: LIVE_DEADLINE_MS });
    assert.match((await page.locator("#details").textContent()) ?? "", /free again at/);
  });

  it("draws an IPv6 /48 and zooms into a cell of small blocks", async () => {
    await page.goto(`${ui.url}?range=${encodeURIComponent(`${ns}/v6`)}`);
    await page.locator("#map[data-items]").waitFor();
    assert.equal(await page.locator("#map").getAttribute("data-grid"), "256x256");
    const net = cidrs.get("net-a")!;
    assert.equal(net, "fd00:20::/64");
    await hover(`${ns}/v6`, net);
    await page.locator("#details", { hasText: `${net} — allocated` }).waitFor();
    assert.match((await page.locator("#details").textContent()) ?? "", /2\^64 addresses/);
    // The /128 shares a /64 cell with free space: the cell sums them up; a click zooms into it.
    const host = cidrs.get("host-a")!;
    const cell = (await viewOf(`${ns}/v6`)).items.find((i) => i[4] === 6);
    assert.ok(cell, "a summed-up cell");
    await page.locator("#map").click({ position: await positionOf(`${ns}/v6`, cell[6]) });
    await page.waitForURL(/block=/);
    const zoomed = new URL(page.url()).searchParams.get("block");
    assert.equal(zoomed, cell[6]);
    await page.locator("#zoom-path", { hasText: cell[6] }).waitFor();
    // Zoomed into the /64, the /128 is in a cell of 2^48 addresses: summed up with less free space.
    const view = await viewOf(`${ns}/v6`, cell[6]);
    assert.equal(view.grid.cellSize, (1n << 48n).toString());
    const inner = view.items.find((i) => i[4] === 6);
    assert.ok(inner, "the /128's cell");
    assert.equal(inner[6], "fd00:20:0:1::/80");
    assert.ok(host.startsWith("fd00:20:0:1:"), host);
    await page.locator("#map").hover({ position: await positionOf(`${ns}/v6`, inner[6], cell[6]) });
    await page.locator("#details", { hasText: `request ${ns}/host-a` }).waitFor();
  });

  it("shows a holder picked in the list, zooming in when its block is summed up", async () => {
    await page.goto(`${ui.url}?range=${encodeURIComponent(`${ns}/v6`)}`);
    await page.locator("#map[data-items]").waitFor();
    const host = cidrs.get("host-a")!;
    await page.locator(`#holders tr[data-holder="${ns}/host-a"] button`).click();
    await page.waitForURL(/block=/);
    assert.equal(host, "fd00:20:0:1::/128", "best fit: the smallest free block after the /64");
    // 16 bits up from the /128: the block whose map draws it as one cell.
    assert.equal(new URL(page.url()).searchParams.get("block"), "fd00:20:0:1::/112");
    await page.locator(`#details[data-block="${host}"]`).waitFor();
    assert.match((await page.locator("#details").textContent()) ?? "", new RegExp(`request ${ns}/host-a`));
  });

  it("ran without a script error, console error or blocked resource", () => {
    assert.deepEqual(pageErrors, []);
  });
});

describe("kubectl ipam ui as a command", () => {
  it("prints its address, serves the cluster read-only and stops on SIGINT", async () => {
    const ns = await cluster.createNamespace("ui-cmd");
    await ipamFixture(cluster, ns).range("lab", { ranges: ["192.168.7.0/24"] });
    const child = spawn(
      process.execPath,
      ["--import", "tsx", PLUGIN, "ui", "--kubeconfig", cluster.kubeconfigPath, "-n", ns, "--no-open"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          stdout += d.toString("utf8");
          const found = /http:\/\/127\.0\.0\.1:\d+\//.exec(stdout);
          if (found) resolve(found[0]);
        });
        child.on("exit", (code) => reject(new Error(`exited with ${code}: ${stderr}`)));
      });
      assert.match(stdout, new RegExp(`namespace ${ns} and cluster-wide ranges; read-only`));
      const data = (await (await fetch(`${url}api/ranges`)).json()) as { ranges: { key: string }[] };
      assert.deepEqual(
        data.ranges.map((r) => r.key),
        [`${ns}/lab`],
      );
    } finally {
      child.kill("SIGINT");
    }
    const [code] = await once(child, "exit");
    assert.equal(code, 0, stderr);
  });
});
