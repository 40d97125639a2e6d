/**
 * The address map's data layer against the engine: after any mix of allocations, releases with
 * cooldowns, exclusions (with a gateway) and pool changes, the regions tile the pool exactly (no
 * overlap, no gap, counts equal to the allocator's usage), and their layout covers exactly the used
 * cells of the grid, each once, with every address counted once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { layoutMap, viewPool, viewRegions } from "../../src/cli/ui/layout.ts";
import { countByKind, pendingAddresses, poolRegions, type Region } from "../../src/cli/ui/regions.ts";
import { Allocator, Cidr, parseExclusions, parseGateway } from "../../src/ipam/index.ts";

const BASE = 0x0a000000n; // 10.0.0.0, the space is 10.0.0.0/22

type Op =
  | { kind: "allocate"; size: number }
  | { kind: "release"; pick: number; cool: boolean }
  | { kind: "exclude"; first: number; length: number }
  | { kind: "pool"; blocks: { offset: number; prefix: number }[] };

const block = fc.record({ offset: fc.nat(1023), prefix: fc.integer({ min: 24, max: 32 }) });

const ops = fc.array(
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant("allocate" as const),
        size: fc.integer({ min: 23, max: 32 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat(), cool: fc.boolean() }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("exclude" as const),
        first: fc.nat(1023),
        length: fc.nat(40),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("pool" as const),
        blocks: fc.array(block, { minLength: 1, maxLength: 4 }),
      }),
    },
  ),
  { maxLength: 60 },
);

function cidrOf(offset: number, prefix: number): Cidr {
  return Cidr.of(4, BASE + BigInt(offset), prefix);
}

function ip(offset: number): string {
  return Cidr.of(4, BASE + BigInt(offset), 32).addressString();
}

function apply(alloc: Allocator, op: Op, gateway: string): void {
  try {
    if (op.kind === "allocate") alloc.allocate(op.size, { now: 1000 });
    else if (op.kind === "release") {
      const held = alloc.allocations();
      const victim = held[op.pick % Math.max(held.length, 1)];
      if (victim) alloc.release(victim, op.cool ? { coolUntil: 5000 } : undefined);
    } else if (op.kind === "exclude") {
      const last = Math.min(op.first + op.length, 1023);
      const entries = [`${ip(op.first)}-${ip(last)}`];
      alloc.setExclusions([...parseExclusions(entries, 4), parseGateway(gateway, 4)]);
    } else {
      alloc.setPool(canonical(op.blocks.map((b) => cidrOf(b.offset, b.prefix))));
    }
  } catch (error) {
    if (!(error instanceof Error) || !("code" in error)) throw error;
  }
}

/** Disjoint blocks, ascending (later blocks inside earlier ones dropped). */
function canonical(blocks: Cidr[]): Cidr[] {
  const out: Cidr[] = [];
  for (const b of blocks) if (!out.some((o) => o.overlaps(b))) out.push(b);
  return out.sort((a, b) => (a.start < b.start ? -1 : 1));
}

function checkTiling(pool: readonly Cidr[], regions: readonly Region[]): void {
  let poolIndex = 0;
  let next: bigint | undefined;
  for (const region of regions) {
    while (poolIndex < pool.length && !pool[poolIndex]!.contains(region.cidr)) {
      // The previous pool block must have been filled up to its end.
      assert.ok(next === undefined || next === pool[poolIndex]!.end + 1n, `gap before ${region.cidr}`);
      poolIndex++;
      next = pool[poolIndex]?.start;
    }
    assert.ok(poolIndex < pool.length, `${region.cidr} lies outside the pool`);
    next ??= pool[poolIndex]!.start;
    assert.equal(region.cidr.start, next, `gap or overlap at ${region.cidr}`);
    next = region.cidr.end + 1n;
  }
  if (pool.length > 0) {
    assert.equal(poolIndex, pool.length - 1, "regions end before the last pool block");
    assert.equal(next, pool[pool.length - 1]!.end + 1n, "the last pool block is not filled");
  }
}

function checkLayout(pool: readonly Cidr[], regions: readonly Region[]): void {
  const layout = layoutMap(pool, regions);
  const painted = new Uint8Array(layout.width * layout.height);
  let addresses = 0n;
  for (const item of layout.items) {
    for (let y = item.y; y < item.y + item.h; y++) {
      for (let x = item.x; x < item.x + item.w; x++) {
        assert.ok(x < layout.width && y < layout.height, "item outside the grid");
        assert.equal(painted[y * layout.width + x], 0, `cell ${x},${y} painted twice`);
        painted[y * layout.width + x] = 1;
      }
    }
    if (item.type === "region") {
      assert.equal(BigInt(item.w * item.h) * layout.cellSize, item.region.cidr.size, "region drawn to scale");
      addresses += item.region.cidr.size;
    } else {
      const inTile = Object.values(item.counts).reduce((a, b) => a + b, 0n);
      assert.ok(inTile > 0n && inTile < layout.cellSize, "a tile sums regions smaller than a cell");
      assert.ok(item.cover.contains(Cidr.of(4, item.cover.start, item.cover.prefix)));
      addresses += inTile;
    }
  }
  assert.equal(addresses, layout.total, "every address counted once");
  assert.equal(
    painted.reduce((a, b) => a + b, 0),
    layout.usedCells,
    "exactly the used cells are painted",
  );
}

test("regions tile the pool exactly and match the allocator's usage", () => {
  fc.assert(
    fc.property(fc.array(block, { minLength: 1, maxLength: 4 }), ops, fc.nat(1023), (initial, script, gw) => {
      const gateway = ip(gw);
      const alloc = new Allocator({
        family: 4,
        blocks: canonical(initial.map((b) => cidrOf(b.offset, b.prefix))),
        exclusions: [parseGateway(gateway, 4)],
      });
      for (const op of script) apply(alloc, op, gateway);
      const regions = poolRegions(alloc, Cidr.parseIP(gateway));
      checkTiling(alloc.blocks(), regions);
      const usage = alloc.usage();
      const counts = countByKind(regions);
      assert.equal(counts.allocated + counts.pending, usage.allocated);
      assert.equal(counts.free, usage.free);
      assert.equal(counts.excluded + counts.gateway, usage.excluded);
      assert.equal(counts.cooling, usage.cooling);
      assert.ok(counts.gateway <= 1n);
      assert.equal(pendingAddresses(alloc), counts.pending, "the list's pending count is the map's");
      checkLayout(alloc.blocks(), regions);
      // Any aligned view inside the pool tiles as well.
      const first = alloc.blocks()[0];
      if (first && first.prefix < 32) {
        const view = Cidr.of(4, first.start, first.prefix + 1);
        const viewed = viewRegions(regions, view);
        checkTiling(viewPool(alloc.blocks(), view), viewed);
        checkLayout(viewPool(alloc.blocks(), view), viewed);
      }
    }),
    { numRuns: 300 },
  );
});

test("a /8 of /32s and an IPv6 /48 lay out on a bounded grid without enumerating addresses", () => {
  const v4 = new Allocator({ family: 4, blocks: [Cidr.parse("10.0.0.0/8")] });
  for (let i = 0; i < 2000; i++) v4.reserve(Cidr.of(4, 0x0a000000n + BigInt(i * 7919), 32));
  const layout4 = layoutMap(v4.blocks(), poolRegions(v4));
  assert.equal(layout4.width * layout4.height, 65536);
  assert.equal(layout4.cellSize, 256n);
  assert.equal(layout4.total, 1n << 24n);

  const v6 = new Allocator({ family: 6, blocks: [Cidr.parse("fd00:1::/48")] });
  v6.allocate(64);
  v6.allocate(128);
  const layout6 = layoutMap(v6.blocks(), poolRegions(v6));
  assert.equal(layout6.width, 256);
  assert.equal(layout6.cellSize, 1n << 64n);
  const tile = layout6.items.find((item) => item.type === "tile");
  assert.ok(tile && tile.type === "tile");
  assert.equal(
    tile.cover.toString(),
    "fd00:1:0:1::/64",
    "the /128 and the free space next to it share a /64 cell",
  );
});
