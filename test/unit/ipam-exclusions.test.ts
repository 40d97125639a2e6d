/** §7 exclusions and the gateway in the engine: parsing, every message, allocation around them. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Allocator,
  Cidr,
  type Exclusion,
  type Family,
  IpamError,
  type Mode,
  parseExclusions,
  parseGateway,
  parsePool,
} from "../../src/ipam/index.ts";

function fails(action: () => unknown, code: IpamError["code"], message: string): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof IpamError, `not an IpamError: ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.code, code);
    return true;
  });
}

const strings = (blocks: Cidr[]): string[] => blocks.map(String);

/** An eight-address pool per family; `at(i)` is its i-th address as text. */
const families: { family: Family; pool: string; at: (i: number) => string }[] = [
  { family: 4, pool: "10.0.0.0/29", at: (i) => `10.0.0.${i}` },
  { family: 6, pool: "fd00::/125", at: (i) => (i === 0 ? "fd00::" : `fd00::${i}`) },
];

describe("parsing exclude entries and the gateway (§7)", () => {
  test("entries in the §2 grammar: CIDRs (host bits ignored), ranges, single IPs", () => {
    const parsed = parseExclusions(["10.0.0.1", "10.0.0.9/30", "10.0.0.20-10.0.0.22"], 4);
    assert.deepEqual(
      parsed.map((exclusion) => [exclusion.entry, exclusion.first, exclusion.last]),
      [
        ["10.0.0.1", 0x0a000001n, 0x0a000001n],
        ["10.0.0.9/30", 0x0a000008n, 0x0a00000bn],
        ["10.0.0.20-10.0.0.22", 0x0a000014n, 0x0a000016n],
      ],
    );
    assert.deepEqual(parseExclusions([], 6), []);
  });

  test("bad entries: the §7 message, with the reason where §2 gives one", () => {
    fails(() => parseExclusions(["10.0.0.1", "x"], 4), "InvalidExclusion", 'invalid exclude entry "x"');
    fails(() => parseExclusions(["10.0.0.1 "], 4), "InvalidExclusion", 'invalid exclude entry "10.0.0.1 "');
    fails(
      () => parseExclusions(["10.0.0.5-10.0.0.1"], 4),
      "InvalidExclusion",
      'invalid exclude entry "10.0.0.5-10.0.0.1": end of range before start',
    );
    fails(
      () => parseExclusions(["10.0.0.1-fd00::1"], 4),
      "InvalidExclusion",
      'invalid exclude entry "10.0.0.1-fd00::1": start and end ip have different version',
    );
    fails(
      () => parseExclusions("10.0.0.1" as unknown as string[], 4),
      "InvalidExclusion",
      "invalid exclude entries: not a list",
    );
  });

  test("entries of the other family are invalid; without a range family they must agree", () => {
    fails(
      () => parseExclusions(["fd00::1"], 4),
      "InvalidExclusion",
      'invalid exclude entry "fd00::1": IPv6 but the range is IPv4',
    );
    fails(
      () => parseExclusions(["10.0.0.0/24"], 6),
      "InvalidExclusion",
      'invalid exclude entry "10.0.0.0/24": IPv4 but the range is IPv6',
    );
    fails(
      () => parseExclusions(["10.0.0.1", "fd00::1"], undefined),
      "InvalidExclusion",
      'invalid exclude entry "fd00::1": IPv6 but the range is IPv4',
    );
    assert.equal(parseExclusions(["fd00::1"], undefined)[0]?.family, 6);
  });

  test("the gateway: one IP of the range's family", () => {
    assert.deepEqual(parseGateway("10.0.0.1", 4), {
      entry: "10.0.0.1",
      family: 4,
      first: 0x0a000001n,
      last: 0x0a000001n,
    });
    fails(() => parseGateway("10.0.0.300", 4), "InvalidExclusion", 'invalid gateway "10.0.0.300"');
    fails(() => parseGateway("10.0.0.0/24", 4), "InvalidExclusion", 'invalid gateway "10.0.0.0/24"');
    fails(
      () => parseGateway("fd00::1", 4),
      "InvalidExclusion",
      'invalid gateway "fd00::1": IPv6 but the range is IPv4',
    );
  });

  test("the allocator refuses exclusions of the other family", () => {
    const [exclusion] = parseExclusions(["fd00::1"], 6) as [Exclusion];
    fails(
      () => new Allocator({ family: 4, blocks: parsePool(["10.0.0.0/24"]).blocks, exclusions: [exclusion] }),
      "InvalidExclusion",
      'invalid exclude entry "fd00::1": IPv6 but the range is IPv4',
    );
  });
});

for (const { family, pool, at } of families) {
  const cidr = (i: number, prefix = family === 4 ? 32 : 128): string => `${at(i)}/${prefix}`;
  const W = family === 4 ? 32 : 128;
  /** The pool with the gateway at address 1 and an excluded range 4-5. */
  const allocator = (mode: Mode = "FirstMatch", entries = [`${at(4)}-${at(5)}`]): Allocator =>
    new Allocator({
      family,
      blocks: parsePool([pool]).blocks,
      mode,
      exclusions: [...parseExclusions(entries, family), parseGateway(at(1), family)],
    });

  describe(`exclusions in the allocator (IPv${family})`, () => {
    for (const mode of ["FirstMatch", "RoundRobin"] as const) {
      test(`${mode}: automatic allocation never hands out excluded addresses`, () => {
        const alloc = allocator(mode);
        const got = Array.from({ length: 5 }, () => alloc.allocate(W).toString());
        assert.deepEqual(got, [cidr(0), cidr(2), cidr(3), cidr(6), cidr(7)]);
        fails(() => alloc.allocate(W), "Busy", `allocation with size ${W} failed`);
      });
    }

    test("larger sizes fit only around the exclusions", () => {
      const alloc = allocator();
      assert.deepEqual(strings(alloc.freeBlocks()), [cidr(0), cidr(2, W - 1), cidr(6, W - 1)]);
      assert.equal(alloc.allocate(W - 1).toString(), cidr(2, W - 1));
      assert.equal(alloc.allocate(W - 1).toString(), cidr(6, W - 1));
      fails(() => alloc.allocate(W - 1), "Busy", `allocation with size ${W - 1} failed`);
      fails(
        () => alloc.allocate(W - 2),
        "NeverFits",
        `size ${W - 2} never fits: the largest block of the range outside its exclusions is /${W - 1}`,
      );
      const all = allocator("FirstMatch", [pool]);
      fails(() => all.allocate(W), "NeverFits", `size ${W} never fits: the range is entirely excluded`);
    });

    test("an explicit reservation overlapping an exclusion fails, naming the exclusion", () => {
      const alloc = allocator();
      fails(() => alloc.reserve(Cidr.parse(cidr(1))), "Excluded", `${cidr(1)} overlaps excluded ${at(1)}`);
      fails(
        () => alloc.reserve(Cidr.parse(cidr(4, W - 2))),
        "Excluded",
        `${cidr(4, W - 2)} overlaps excluded ${at(4)}-${at(5)}`,
      );
      fails(
        () => alloc.reserve(Cidr.parse(cidr(0, W - 3))),
        "Excluded",
        `${cidr(0, W - 3)} overlaps excluded ${at(1)}`,
      );
      alloc.reserve(Cidr.parse(cidr(6, W - 1)));
      assert.deepEqual(strings(alloc.allocations()), [cidr(6, W - 1)]);
    });

    test("an indexed request of an excluded block fails like an explicit one", () => {
      const alloc = allocator();
      fails(() => alloc.allocateIndexed(1n, W), "Excluded", `${cidr(1)} overlaps excluded ${at(1)}`);
      assert.equal(alloc.allocateIndexed(2n, W).toString(), cidr(2));
      assert.equal(alloc.allocateIndexed(3n, W - 1).toString(), cidr(6, W - 1));
    });

    test("excluded space is neither allocated nor free, and no caller can release it", () => {
      const alloc = allocator();
      assert.deepEqual(alloc.usage(), {
        total: 8n,
        allocated: 0n,
        free: 5n,
        excluded: 3n,
        cooling: 0n,
        largestFree: W - 1,
        freeBlockCount: 3,
      });
      assert.deepEqual(strings(alloc.excludedBlocks()), [cidr(1), cidr(4, W - 1)]);
      assert.deepEqual(alloc.allocations(), []);
      assert.equal(alloc.isAllocated(Cidr.parse(cidr(1))), false);
      fails(() => alloc.release(Cidr.parse(cidr(1))), "NotAllocated", `${cidr(1)} is not allocated`);
      alloc.allocate(W);
      assert.equal(alloc.usage().allocated, 1n);
      assert.equal(alloc.usage().free, 4n);
    });

    test("an exclusion added over a live allocation acts like a shrink", () => {
      const alloc = new Allocator({ family, blocks: parsePool([pool]).blocks });
      const held = alloc.allocate(W - 2);
      assert.equal(held.toString(), cidr(0, W - 2));
      alloc.setExclusions([...parseExclusions([at(2)], family), parseGateway(at(1), family)]);
      assert.deepEqual(strings(alloc.excludedAllocations()), [cidr(0, W - 2)]);
      assert.deepEqual(strings(alloc.allocations()), [cidr(0, W - 2)]);
      assert.equal(alloc.usage().excluded, 0n);
      assert.equal(alloc.usage().allocated, 4n);
      alloc.release(held);
      assert.deepEqual(alloc.excludedAllocations(), []);
      assert.deepEqual(strings(alloc.freeBlocks()), [cidr(0), cidr(3), cidr(4, W - 2)]);
      assert.equal(alloc.usage().excluded, 2n);
      assert.equal(alloc.allocate(W).toString(), cidr(0));
      assert.equal(alloc.allocate(W).toString(), cidr(3));
    });

    test("removing an exclusion frees its space at once; an exclusion outside the pool does nothing", () => {
      const alloc = allocator();
      alloc.setExclusions([]);
      assert.deepEqual(strings(alloc.freeBlocks()), [cidr(0, W - 3)]);
      alloc.setExclusions(parseExclusions([family === 4 ? "10.1.0.0/16" : "fd01::/64"], family));
      assert.equal(alloc.usage().excluded, 0n);
      assert.equal(alloc.allocate(W - 3).toString(), cidr(0, W - 3));
    });

    test("pool changes keep the exclusions: new space is excluded where they say", () => {
      const half = family === 4 ? "10.0.0.0/30" : "fd00::/126";
      const alloc = new Allocator({
        family,
        blocks: parsePool([half]).blocks,
        exclusions: parseExclusions([`${at(1)}`, `${at(5)}`], family),
      });
      assert.equal(alloc.usage().excluded, 1n);
      alloc.setPool(parsePool([pool]).blocks);
      assert.equal(alloc.usage().excluded, 2n);
      assert.deepEqual(strings(alloc.freeBlocks()), [cidr(0), cidr(2, W - 1), cidr(4), cidr(6, W - 1)]);
    });

    test("rebuild and adopt keep holders over exclusions; those stay until released", () => {
      const options = {
        family,
        blocks: parsePool([pool]).blocks,
        exclusions: [parseGateway(at(1), family)],
      };
      const { allocator: rebuilt, rejected } = Allocator.rebuild(options, [Cidr.parse(cidr(0, W - 1))]);
      assert.deepEqual(rejected, []);
      assert.deepEqual(strings(rebuilt.excludedAllocations()), [cidr(0, W - 1)]);
      const adopting = new Allocator(options);
      adopting.adopt(Cidr.parse(cidr(0, W - 2)));
      assert.deepEqual(strings(adopting.allocations()), [cidr(0, W - 2)]);
      assert.equal(adopting.usage().excluded, 0n);
      fails(() => adopting.adopt(Cidr.parse(cidr(2))), "Busy", `${cidr(2)} already busy`);
      adopting.release(Cidr.parse(cidr(0, W - 2)));
      assert.deepEqual(strings(adopting.excludedBlocks()), [cidr(1)]);
      adopting.checkConsistency();
    });
  });
}

test("an IPv6 /64 with a gateway: exact counts, allocations over a new exclusion listed", () => {
  const alloc = new Allocator({
    family: 6,
    blocks: parsePool(["fd00::/64"]).blocks,
    exclusions: [parseGateway("fd00::1", 6)],
  });
  assert.equal(alloc.allocate(128).toString(), "fd00::/128");
  assert.equal(alloc.allocate(128).toString(), "fd00::2/128");
  assert.equal(alloc.allocate(127).toString(), "fd00::4/127");
  const usage = alloc.usage();
  assert.deepEqual(
    [usage.total, usage.allocated, usage.excluded, usage.free],
    [1n << 64n, 4n, 1n, (1n << 64n) - 5n],
  );
  assert.equal(alloc.allocate(120).toString(), "fd00::100/120");
  alloc.setExclusions([parseGateway("fd00::1", 6), ...parseExclusions(["fd00::105", "fd00::2"], 6)]);
  assert.deepEqual(strings(alloc.excludedAllocations()), ["fd00::2/128", "fd00::100/120"]);
  assert.equal(alloc.usage().excluded, 1n);
  alloc.checkConsistency();
});
