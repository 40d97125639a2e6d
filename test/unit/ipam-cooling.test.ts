/** §7 reuseCooldownSeconds in the engine: cooling blocks, the time passed in, persistence, messages. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Allocator,
  Cidr,
  type Family,
  formatCooling,
  IpamError,
  type Mode,
  parseCooling,
  parseCoolingEntries,
  parseExclusions,
  parsePool,
} from "../../src/ipam/index.ts";

function fails(action: () => unknown, code: IpamError["code"], message: string, coolingUntil?: number): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof IpamError, `not an IpamError: ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.code, code);
    assert.equal(error.coolingUntil, coolingUntil);
    return true;
  });
}

const strings = (blocks: Cidr[]): string[] => blocks.map(String);
const T = Date.parse("2026-12-01T07:00:00.000Z");
const iso = (time: number): string => new Date(time).toISOString();

const families: { family: Family; pool: string; at: (i: number) => string }[] = [
  { family: 4, pool: "10.0.0.0/29", at: (i) => `10.0.0.${i}` },
  { family: 6, pool: "fd00::/125", at: (i) => (i === 0 ? "fd00::" : `fd00::${i}`) },
];

for (const { family, pool, at } of families) {
  const W = family === 4 ? 32 : 128;
  const cidr = (i: number, prefix = W): string => `${at(i)}/${prefix}`;
  const block = (i: number, prefix = W): Cidr => Cidr.parse(cidr(i, prefix));
  const allocator = (mode: Mode = "FirstMatch"): Allocator =>
    new Allocator({ family, blocks: parsePool([pool]).blocks, mode });

  describe(`cooling blocks (IPv${family})`, () => {
    test("FirstMatch: a block released with a cooldown is not reused until its time has come", () => {
      const alloc = allocator();
      const first = alloc.allocate(W, { now: T });
      alloc.release(first, { coolUntil: T + 30_000 });
      assert.equal(alloc.allocate(W, { now: T }).toString(), cidr(1));
      assert.equal(alloc.allocate(W, { now: T + 29_999 }).toString(), cidr(2));
      assert.equal(alloc.allocate(W, { now: T + 30_000 }).toString(), cidr(0));
      assert.deepEqual(alloc.coolingBlocks(), []);
    });

    test("RoundRobin: the wrap-around skips cooling space too", () => {
      const alloc = allocator("RoundRobin");
      const got = Array.from({ length: 8 }, () => alloc.allocate(W, { now: T }));
      alloc.release(got[0] as Cidr, { coolUntil: T + 10 });
      alloc.release(got[5] as Cidr);
      assert.equal(alloc.allocate(W, { now: T }).toString(), cidr(5));
      fails(
        () => alloc.allocate(W, { now: T + 9 }),
        "Busy",
        `allocation with size ${W} failed (space is cooling down until ${iso(T + 10)})`,
        T + 10,
      );
      assert.equal(alloc.allocate(W, { now: T + 10 }).toString(), cidr(0));
    });

    test("Busy only because of cooling says until when: the earliest time the size fits", () => {
      const alloc = allocator();
      const all = Array.from({ length: 8 }, () => alloc.allocate(W));
      alloc.release(all[0] as Cidr, { coolUntil: T + 20 });
      alloc.release(all[1] as Cidr, { coolUntil: T + 10 });
      alloc.release(all[7] as Cidr, { coolUntil: T + 5 });
      fails(
        () => alloc.allocate(W - 1, { now: T }),
        "Busy",
        `allocation with size ${W - 1} failed (space is cooling down until ${iso(T + 20)})`,
        T + 20,
      );
      fails(
        () => alloc.allocate(W, { now: T }),
        "Busy",
        `allocation with size ${W} failed (space is cooling down until ${iso(T + 5)})`,
        T + 5,
      );
      // Nothing cooling would make a /W-2 fit: plain Busy, no time.
      fails(() => alloc.allocate(W - 2, { now: T }), "Busy", `allocation with size ${W - 2} failed`);
      assert.equal(alloc.nextCoolingEnd(), T + 5);
      alloc.checkConsistency();
    });

    test("without a time given nothing ends; expire(now) ends what is due and returns it", () => {
      const alloc = allocator();
      const all = Array.from({ length: 8 }, () => alloc.allocate(W));
      alloc.release(all[2] as Cidr, { coolUntil: T + 1 });
      alloc.release(all[3] as Cidr, { coolUntil: T + 2 });
      fails(
        () => alloc.allocate(W),
        "Busy",
        `allocation with size ${W} failed (space is cooling down until ${iso(T + 1)})`,
        T + 1,
      );
      assert.deepEqual(strings(alloc.expire(T)), []);
      assert.deepEqual(strings(alloc.expire(T + 5)), [cidr(2), cidr(3)]);
      assert.equal(alloc.nextCoolingEnd(), undefined);
      assert.deepEqual(strings(alloc.freeBlocks()), [cidr(2, W - 1)]);
    });

    test("an explicit reservation takes cooling space at once; the rest keeps cooling", () => {
      const alloc = allocator();
      const quarter = alloc.allocate(W - 2);
      alloc.release(quarter, { coolUntil: T + 60_000 });
      alloc.reserve(block(1), { now: T });
      assert.deepEqual(
        alloc.coolingBlocks().map((cooling) => [cooling.cidr.toString(), cooling.until]),
        [
          [cidr(0), T + 60_000],
          [cidr(2, W - 1), T + 60_000],
        ],
      );
      assert.ok(alloc.isAllocated(block(1)));
      assert.equal(alloc.allocate(W, { now: T }).toString(), cidr(4));
    });

    test("an indexed request of a cooling block is Busy until the cooldown ends", () => {
      const alloc = allocator();
      alloc.release(alloc.allocate(W), { coolUntil: T + 7 });
      fails(
        () => alloc.allocateIndexed(0n, W, { now: T }),
        "Busy",
        `${cidr(0)} already busy (space is cooling down until ${iso(T + 7)})`,
        T + 7,
      );
      alloc.reserve(block(1));
      fails(() => alloc.allocateIndexed(0n, W - 1, { now: T }), "Busy", `${cidr(0, W - 1)} already busy`);
      assert.equal(alloc.allocateIndexed(0n, W, { now: T + 7 }).toString(), cidr(0));
    });

    test("cooling space is counted apart and cannot be released by a caller", () => {
      const alloc = allocator();
      const quarter = alloc.allocate(W - 2);
      alloc.allocate(W);
      alloc.release(quarter, { coolUntil: T + 1 });
      assert.deepEqual(alloc.usage(), {
        total: 8n,
        allocated: 1n,
        free: 3n,
        excluded: 0n,
        cooling: 4n,
        largestFree: W - 1,
        freeBlockCount: 2,
      });
      assert.equal(alloc.isAllocated(quarter), false);
      assert.deepEqual(strings(alloc.allocations()), [cidr(4)]);
      fails(() => alloc.release(quarter), "NotAllocated", `${quarter} is not allocated`);
      assert.equal(alloc.usage({ now: T + 1 }).cooling, 0n);
      assert.equal(alloc.usage().free, 7n);
    });

    test("released excluded space stays excluded; only the rest cools", () => {
      const alloc = allocator();
      const half = alloc.allocate(W - 2);
      alloc.setExclusions(parseExclusions([at(1)], family));
      alloc.release(half, { coolUntil: T + 3 });
      assert.deepEqual(strings(alloc.excludedBlocks()), [cidr(1)]);
      assert.deepEqual(strings(alloc.coolingBlocks().map((cooling) => cooling.cidr)), [
        cidr(0),
        cidr(2, W - 1),
      ]);
      alloc.setExclusions(parseExclusions([`${at(0)}-${at(1)}`], family));
      assert.deepEqual(strings(alloc.coolingBlocks().map((cooling) => cooling.cidr)), [cidr(2, W - 1)]);
      assert.equal(alloc.usage().excluded, 2n);
      alloc.checkConsistency();
    });

    test("a pool shrink drops cooling space that left the pool", () => {
      const alloc = allocator();
      alloc.release(alloc.allocate(W - 3), { coolUntil: T + 3 });
      alloc.setPool(parsePool([`${at(0)}-${at(3)}`]).blocks);
      assert.deepEqual(strings(alloc.coolingBlocks().map((cooling) => cooling.cidr)), [cidr(0, W - 2)]);
      assert.equal(alloc.usage().total, 4n);
      assert.equal(alloc.usage().cooling, 4n);
    });

    test("cooldowns survive a restart: export, parse, rebuild", () => {
      const alloc = allocator("RoundRobin");
      const a = alloc.allocate(W);
      const b = alloc.allocate(W);
      alloc.allocate(W);
      alloc.release(a, { coolUntil: T + 1_500 });
      alloc.release(b, { coolUntil: T + 2_000 });
      const exported = alloc.exportCooling();
      assert.deepEqual(exported, [`${cidr(0)}@${iso(T + 1_500)}`, `${cidr(1)}@${iso(T + 2_000)}`]);
      const { allocator: rebuilt, rejected } = Allocator.rebuild(
        {
          family,
          blocks: alloc.blocks(),
          mode: "RoundRobin",
          cursors: alloc.exportCursors(),
          cooling: parseCooling(exported, family),
        },
        alloc.allocations(),
      );
      assert.deepEqual(rejected, []);
      assert.deepEqual(rebuilt.exportCooling(), exported);
      assert.equal(rebuilt.nextCoolingEnd(), T + 1_500);
      assert.deepEqual(rebuilt.usage(), alloc.usage());
      // A stored cooling block under a live allocation: the allocation wins.
      const trimmed = Allocator.rebuild(
        {
          family,
          blocks: alloc.blocks(),
          cooling: parseCooling([`${cidr(0, W - 1)}@${iso(T + 9)}`], family),
        },
        [block(1)],
      ).allocator;
      assert.deepEqual(trimmed.exportCooling(), [`${cidr(0)}@${iso(T + 9)}`]);
    });
  });
}

describe("cooling: persistent form and bad input", () => {
  test("format and parse round-trip; junk gets a clear message", () => {
    const cooling = { cidr: Cidr.parse("10.0.0.4/30"), until: T + 1 };
    assert.equal(formatCooling(cooling), "10.0.0.4/30@2026-12-01T07:00:00.001Z");
    assert.deepEqual(
      parseCooling(["10.0.0.4/30@2026-12-01T07:00:00.001Z", "10.0.0.9/32@2026-12-01T07:00:00Z"], 4),
      [cooling, { cidr: Cidr.parse("10.0.0.9/32"), until: T }],
    );
    const form = "use <cidr>@<ISO time>";
    fails(() => parseCooling(["x"], 4), "InvalidCooling", `invalid cooling entry "x": ${form}`);
    fails(
      () => parseCooling(["10.0.0.1/32"], 4),
      "InvalidCooling",
      `invalid cooling entry "10.0.0.1/32": ${form}`,
    );
    fails(
      () => parseCooling(["10.0.0.1/32@2026-12-01 07:00:00Z"], 4),
      "InvalidCooling",
      `invalid cooling entry "10.0.0.1/32@2026-12-01 07:00:00Z": ${form}`,
    );
    fails(
      () => parseCooling(["10.0.0.1/32@2026-02-30T00:00:00Z"], 4),
      "InvalidCooling",
      'invalid cooling entry "10.0.0.1/32@2026-02-30T00:00:00Z": 2026-02-30T00:00:00Z is not a valid time',
    );
    fails(
      () => parseCooling(["fd00::/64@2026-12-01T07:00:00Z"], 4),
      "InvalidCooling",
      'invalid cooling entry "fd00::/64@2026-12-01T07:00:00Z": IPv6 but the range is IPv4',
    );
    fails(
      () => parseCooling("x" as unknown as string[], 4),
      "InvalidCooling",
      "invalid cooling entries: not a list",
    );
  });

  test("entry by entry: the good entries' blocks, and each bad entry's error", () => {
    const { blocks, errors } = parseCoolingEntries(
      [
        "10.0.0.4/30@2026-12-01T07:00:00.001Z",
        "x",
        7,
        "fd00::/64@2026-12-01T07:00:00Z",
        "10.0.0.9/32@2026-12-01T07:00:00Z",
      ],
      4,
    );
    assert.deepEqual(blocks, [
      { cidr: Cidr.parse("10.0.0.4/30"), until: T + 1 },
      { cidr: Cidr.parse("10.0.0.9/32"), until: T },
    ]);
    assert.deepEqual(
      errors.map((e) => [e.code, e.message]),
      [
        ["InvalidCooling", 'invalid cooling entry "x": use <cidr>@<ISO time>'],
        ["InvalidCooling", 'invalid cooling entry "7": use <cidr>@<ISO time>'],
        [
          "InvalidCooling",
          'invalid cooling entry "fd00::/64@2026-12-01T07:00:00Z": IPv6 but the range is IPv4',
        ],
      ],
    );
    assert.deepEqual(parseCoolingEntries(undefined, 6), { blocks: [], errors: [] });
    assert.deepEqual(
      parseCoolingEntries("x", 4).errors.map((e) => e.message),
      ["invalid cooling entries: not a list"],
    );
  });

  test("times must be integer milliseconds since the epoch", () => {
    const alloc = new Allocator({ family: 4, blocks: parsePool(["10.0.0.0/30"]).blocks });
    const held = alloc.allocate(32);
    const use = "use milliseconds since the epoch";
    fails(
      () => alloc.release(held, { coolUntil: Number.NaN }),
      "InvalidCooling",
      `invalid cooldown end NaN: ${use}`,
    );
    fails(
      () => alloc.release(held, { coolUntil: 1.5 }),
      "InvalidCooling",
      `invalid cooldown end 1.5: ${use}`,
    );
    assert.ok(alloc.isAllocated(held), "a refused release changes nothing");
    fails(() => alloc.allocate(32, { now: -1 }), "InvalidCooling", `invalid time -1: ${use}`);
    fails(() => alloc.expire(Number.POSITIVE_INFINITY), "InvalidCooling", `invalid time Infinity: ${use}`);
  });
});
