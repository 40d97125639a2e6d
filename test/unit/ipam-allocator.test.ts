/** §4: the allocation policy — every example and message, pool changes, cursors, rebuild. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Allocator, Cidr, type Family, IpamError, type Mode, parsePool } from "../../src/ipam/index.ts";

function allocator(ranges: string[], mode: Mode = "FirstMatch", cursors?: string[]): Allocator {
  const pool = parsePool(ranges);
  return new Allocator({ family: pool.family ?? 4, blocks: pool.blocks, mode, cursors });
}

function fails(action: () => unknown, code: IpamError["code"], message: string): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof IpamError, `not an IpamError: ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.code, code);
    return true;
  });
}

const cidr = (text: string): Cidr => Cidr.parse(text);
const strings = (blocks: Cidr[]): string[] => blocks.map(String);

describe("FirstMatch (§4)", () => {
  test("192.168.0.10-192.168.0.20 hands out .20 (the lone /32) first, then .10, .11, …", () => {
    const alloc = allocator(["192.168.0.10-192.168.0.20"]);
    const got = Array.from({ length: 11 }, () => alloc.allocate(32).toString());
    assert.deepEqual(got, [
      "192.168.0.20/32",
      "192.168.0.10/32",
      "192.168.0.11/32",
      "192.168.0.12/32",
      "192.168.0.13/32",
      "192.168.0.14/32",
      "192.168.0.15/32",
      "192.168.0.16/32",
      "192.168.0.17/32",
      "192.168.0.18/32",
      "192.168.0.19/32",
    ]);
    fails(() => alloc.allocate(32), "Busy", "allocation with size 32 failed");
  });

  test("a freed block is reused first by the next request of its size", () => {
    const alloc = allocator(["10.0.0.0/24"]);
    const blocks = Array.from({ length: 4 }, () => alloc.allocate(28));
    assert.deepEqual(strings(blocks), ["10.0.0.0/28", "10.0.0.16/28", "10.0.0.32/28", "10.0.0.48/28"]);
    alloc.release(cidr("10.0.0.16/28"));
    assert.equal(alloc.allocate(28).toString(), "10.0.0.16/28");
  });

  test("smallest fitting free block wins, ties to the lowest address", () => {
    const alloc = allocator(["10.0.0.0/24"]);
    alloc.reserve(cidr("10.0.0.0/26"));
    alloc.reserve(cidr("10.0.0.128/27"));
    // Free: .64/26, .160/27, .192/26 → a /28 comes from the /27.
    assert.equal(alloc.allocate(28).toString(), "10.0.0.160/28");
    // Free: .64/26, .176/28, .192/26 → a /26 takes the lower /26.
    assert.equal(alloc.allocate(26).toString(), "10.0.0.64/26");
  });

  test("the README example: 192.168.0.0/16 with chunk size 24", () => {
    const alloc = allocator(["192.168.0.0/16"]);
    assert.equal(alloc.allocate(24).toString(), "192.168.0.0/24");
    assert.equal(alloc.allocate(24).toString(), "192.168.1.0/24");
  });

  test("merging stays inside pool blocks", () => {
    const alloc = allocator(["10.0.1.0/24", "10.0.2.0/24"]);
    const a = alloc.allocate(24);
    const b = alloc.allocate(24);
    alloc.release(a);
    alloc.release(b);
    assert.deepEqual(strings(alloc.freeBlocks()), ["10.0.1.0/24", "10.0.2.0/24"]);
    fails(() => alloc.allocate(23), "NeverFits", "size 23 never fits: the largest block of the range is /24");
  });

  test("sizes: Busy, NeverFits and invalid sizes", () => {
    const alloc = allocator(["10.0.0.0/16", "10.2.0.0/24"]);
    fails(() => alloc.allocate(8), "NeverFits", "size 8 never fits: the largest block of the range is /16");
    fails(() => alloc.allocate(33), "InvalidSize", "size 33 too large: network 32");
    fails(() => alloc.allocate(-1), "InvalidSize", "invalid size -1");
    fails(() => alloc.allocate(Number.NaN), "InvalidSize", "invalid size NaN");
    fails(() => alloc.allocate(24.5), "InvalidSize", "invalid size 24.5");
    alloc.allocate(16);
    alloc.allocate(24);
    fails(() => alloc.allocate(24), "Busy", "allocation with size 24 failed");
    fails(() => allocator([]).allocate(24), "NeverFits", "size 24 never fits: the range is empty");
  });

  test("IPv6: exact sizes, /64 blocks of a /32 merge back (63+ host bits)", () => {
    const alloc = allocator(["fd00::/32"]);
    const first = alloc.allocate(64);
    const second = alloc.allocate(64);
    assert.equal(first.toString(), "fd00::/64");
    assert.equal(second.toString(), "fd00:0:0:1::/64");
    assert.equal(alloc.usage().free, (1n << 96n) - (2n << 64n));
    alloc.release(first);
    alloc.release(second);
    assert.deepEqual(strings(alloc.freeBlocks()), ["fd00::/32"]);
    const whole = allocator(["::/0"]);
    const half = whole.allocate(1);
    assert.equal(half.toString(), "::/1");
    assert.equal(whole.allocate(1).toString(), "8000::/1");
    whole.release(half);
    whole.release(cidr("8000::/1"));
    assert.deepEqual(whole.usage(), {
      total: 1n << 128n,
      allocated: 0n,
      free: 1n << 128n,
      excluded: 0n,
      cooling: 0n,
      largestFree: 0,
      freeBlockCount: 1,
    });
  });

  test("IPv6: allocations deeper than 53 bits below the pool's hull switch key forms without loss", () => {
    const alloc = allocator(["fd00::/32"]);
    const a = alloc.allocate(64);
    const b = alloc.allocate(128);
    assert.equal(b.toString(), "fd00:0:0:1::/128");
    assert.equal(alloc.allocate(128).toString(), "fd00:0:0:1::1/128");
    alloc.reserve(cidr("fd00:0:0:2::5/128"));
    alloc.checkConsistency();
    alloc.release(b);
    alloc.release(a);
    alloc.release(cidr("fd00:0:0:1::1/128"));
    alloc.release(cidr("fd00:0:0:2::5/128"));
    assert.deepEqual(strings(alloc.freeBlocks()), ["fd00::/32"]);
    alloc.checkConsistency();
  });
});

describe("RoundRobin (§4)", () => {
  test("10.0.0.0/8: allocate /9, release, three times → 10.0.0.0/9, 10.128.0.0/9, 10.0.0.0/9", () => {
    const alloc = allocator(["10.0.0.0/8"], "RoundRobin");
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const block = alloc.allocate(9);
      got.push(block.toString());
      alloc.release(block);
    }
    assert.deepEqual(got, ["10.0.0.0/9", "10.128.0.0/9", "10.0.0.0/9"]);
  });

  test("cursors are exported as <ip>/<size>, ascending by size", () => {
    const alloc = allocator(["10.0.0.0/24"], "RoundRobin");
    assert.equal(alloc.allocate(30).toString(), "10.0.0.0/30");
    assert.equal(alloc.allocate(30).toString(), "10.0.0.4/30");
    assert.equal(alloc.allocate(32).toString(), "10.0.0.8/32");
    assert.deepEqual(alloc.exportCursors(), ["10.0.0.8/30", "10.0.0.9/32"]);
  });

  test("a free block before the cursor offers its slots at or after the cursor", () => {
    const alloc = allocator(["10.0.0.0/24"], "RoundRobin");
    const a = alloc.allocate(26); // .0/26, cursor .64
    alloc.release(a); // everything merges back into .0/24, which holds the cursor
    // The /24 offers .64/26 (the largest aligned block at the cursor) — a /28 comes from there.
    assert.equal(alloc.allocate(28).toString(), "10.0.0.0/28"); // no /28 cursor yet: FirstMatch
    assert.equal(alloc.allocate(26).toString(), "10.0.0.64/26");
    assert.equal(alloc.allocate(26).toString(), "10.0.0.128/26");
    assert.equal(alloc.allocate(26).toString(), "10.0.0.192/26");
    // Nothing at or after 10.0.1.0: wrap around once (FirstMatch).
    fails(() => alloc.allocate(26), "Busy", "allocation with size 26 failed");
    assert.equal(alloc.allocate(28).toString(), "10.0.0.16/28");
  });

  test("best fit among the space after the cursor, wrapping when nothing is left there", () => {
    const alloc = allocator(["192.168.0.10-192.168.0.20"], "RoundRobin");
    const got = Array.from({ length: 11 }, () => alloc.allocate(32).toString());
    assert.equal(got[0], "192.168.0.20/32");
    assert.equal(got[1], "192.168.0.10/32");
    alloc.release(cidr("192.168.0.12/32"));
    alloc.release(cidr("192.168.0.15/32"));
    // The cursor is past the end (after .19): wrap → FirstMatch picks .12, then .15 follows it.
    assert.equal(alloc.allocate(32).toString(), "192.168.0.12/32");
    assert.equal(alloc.allocate(32).toString(), "192.168.0.15/32");
  });

  test("no crash at the top of the IPv4 and IPv6 address spaces", () => {
    const v4 = allocator(["255.255.255.0/24"], "RoundRobin");
    const got: string[] = [];
    for (let i = 0; i < 64; i++) got.push(v4.allocate(30).toString());
    assert.equal(got[63], "255.255.255.252/30");
    assert.deepEqual(v4.exportCursors(), []);
    fails(() => v4.allocate(30), "Busy", "allocation with size 30 failed");
    v4.release(cidr("255.255.255.252/30"));
    assert.equal(v4.allocate(30).toString(), "255.255.255.252/30");
    v4.release(cidr("255.255.255.0/30"));
    assert.equal(v4.allocate(30).toString(), "255.255.255.0/30");
    assert.deepEqual(v4.exportCursors(), ["255.255.255.4/30"]);

    const v6 = allocator(["ffff::/16"], "RoundRobin");
    assert.equal(v6.allocate(17).toString(), "ffff::/17");
    assert.equal(v6.allocate(17).toString(), "ffff:8000::/17");
    assert.deepEqual(v6.exportCursors(), []);
    v6.release(cidr("ffff:8000::/17"));
    assert.equal(v6.allocate(17).toString(), "ffff:8000::/17");
    const top = allocator(["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126"], "RoundRobin");
    for (let i = 0; i < 4; i++) top.allocate(128);
    assert.deepEqual(top.exportCursors(), []);
    top.release(cidr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128"));
    assert.equal(top.allocate(128).toString(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128");
    assert.equal(allocator(["0.0.0.0/0"], "RoundRobin").allocate(0).toString(), "0.0.0.0/0");
  });

  test("pools with gaps", () => {
    const alloc = allocator(["10.0.0.0/30", "10.0.0.64/30", "10.0.1.0/31"], "RoundRobin");
    const got = Array.from({ length: 10 }, () => alloc.allocate(32).toString());
    assert.deepEqual(got, [
      "10.0.1.0/32",
      "10.0.1.1/32",
      "10.0.0.0/32",
      "10.0.0.1/32",
      "10.0.0.2/32",
      "10.0.0.3/32",
      "10.0.0.64/32",
      "10.0.0.65/32",
      "10.0.0.66/32",
      "10.0.0.67/32",
    ]);
  });

  test("cursors survive export and import; a new allocator continues after them", () => {
    const alloc = allocator(["10.0.0.0/24"], "RoundRobin");
    alloc.allocate(28);
    const cursors = alloc.exportCursors();
    assert.deepEqual(cursors, ["10.0.0.16/28"]);
    const restored = Allocator.rebuild(
      { family: 4, blocks: parsePool(["10.0.0.0/24"]).blocks, mode: "RoundRobin", cursors },
      alloc.allocations(),
    ).allocator;
    restored.release(cidr("10.0.0.0/28"));
    assert.equal(restored.allocate(28).toString(), "10.0.0.16/28");
  });

  test("junk cursors are rejected with InvalidCursor, never a crash", () => {
    const form = "use <ip>/<size>";
    const cases: [unknown, string][] = [
      ["x", `invalid round robin cursor "x": ${form}`],
      ["", `invalid round robin cursor "": ${form}`],
      ["10.0.0.1", `invalid round robin cursor "10.0.0.1": ${form}`],
      ["10.0.0.1/", `invalid round robin cursor "10.0.0.1/": ${form}`],
      ["10.0.0.1/x", `invalid round robin cursor "10.0.0.1/x": ${form}`],
      ["/24", `invalid round robin cursor "/24": ${form}`],
      ["10.0.0.1/024", `invalid round robin cursor "10.0.0.1/024": ${form}`],
      ["10.0.0.1/33", `invalid round robin cursor "10.0.0.1/33": size 33 too large: network 32`],
      ["fd00::/64", `invalid round robin cursor "fd00::/64": IPv6 but the range is IPv4`],
      [42, `invalid round robin cursor "42": ${form}`],
      [null, `invalid round robin cursor "null": ${form}`],
    ];
    for (const [entry, message] of cases) {
      fails(() => allocator(["10.0.0.0/24"], "RoundRobin", [entry as string]), "InvalidCursor", message);
    }
    fails(
      () => allocator(["10.0.0.0/24"], "RoundRobin", ["10.0.0.4/30", "10.0.0.8/30"]),
      "InvalidCursor",
      'invalid round robin cursor "10.0.0.8/30": a second cursor for size 30',
    );
    const alloc = allocator(["10.0.0.0/24"], "RoundRobin", ["10.0.0.64/26"]);
    fails(() => alloc.setCursors(["junk"]), "InvalidCursor", `invalid round robin cursor "junk": ${form}`);
    assert.deepEqual(alloc.exportCursors(), ["10.0.0.64/26"]);
    fails(
      () => alloc.setCursors("10.0.0.0/24" as unknown as string[]),
      "InvalidCursor",
      "invalid round robin cursors: not a list",
    );
  });

  test("imported cursors: unaligned ones round up, ones outside the pool wrap", () => {
    const alloc = allocator(["10.0.0.0/24"], "RoundRobin", ["10.0.0.65/26", "10.9.0.0/28", "9.0.0.0/30"]);
    assert.equal(alloc.allocate(26).toString(), "10.0.0.128/26");
    // 10.9.0.0 is after the pool: nothing at or after it, so FirstMatch (the /26 is the best fit).
    assert.equal(alloc.allocate(28).toString(), "10.0.0.192/28");
    // 9.0.0.0 is before the pool: everything is at or after it.
    assert.equal(alloc.allocate(30).toString(), "10.0.0.208/30");
  });
});

describe("reservation and release (§4)", () => {
  test("reservation succeeds only inside one pool block and entirely free", () => {
    const alloc = allocator(["10.0.0.0/24", "10.0.2.0/24"]);
    alloc.reserve(cidr("10.0.0.64/26"));
    fails(() => alloc.reserve(cidr("10.0.0.64/26")), "Busy", "10.0.0.64/26 already busy");
    fails(() => alloc.reserve(cidr("10.0.0.0/25")), "Busy", "10.0.0.0/25 already busy");
    fails(() => alloc.reserve(cidr("10.0.0.64/27")), "Busy", "10.0.0.64/27 already busy");
    fails(
      () => alloc.reserve(cidr("10.0.1.0/24")),
      "Outside",
      "10.0.1.0/24 is outside the range (10.0.0.0/24, 10.0.2.0/24)",
    );
    fails(
      () => alloc.reserve(cidr("10.0.0.0/22")),
      "Outside",
      "10.0.0.0/22 is outside the range (10.0.0.0/24, 10.0.2.0/24)",
    );
    fails(
      () => alloc.reserve(cidr("fd00::/64")),
      "InvalidRequest",
      "fd00::/64 is IPv6 but the range is IPv4",
    );
    const many = allocator(["10.0.0.0/32", "10.0.0.2/32", "10.0.0.4/32", "10.0.0.6/32", "10.0.0.8/32"]);
    fails(
      () => many.reserve(cidr("10.0.0.1/32")),
      "Outside",
      "10.0.0.1/32 is outside the range (10.0.0.0/32, 10.0.0.2/32, 10.0.0.4/32, 10.0.0.6/32, and 1 more blocks)",
    );
    fails(
      () => allocator([]).reserve(cidr("10.0.0.1/32")),
      "Outside",
      "10.0.0.1/32 is outside the range (the range is empty)",
    );
  });

  test("the i-th block of a size, counted across pool blocks", () => {
    const alloc = allocator(["10.0.0.0/25", "10.0.1.0/26", "10.0.2.0/28"]);
    assert.equal(alloc.allocateIndexed(0n, 26).toString(), "10.0.0.0/26");
    assert.equal(alloc.allocateIndexed(2n, 26).toString(), "10.0.1.0/26");
    fails(() => alloc.allocateIndexed(2n, 26), "Busy", "10.0.1.0/26 already busy");
    fails(
      () => alloc.allocateIndexed(3n, 26),
      "InvalidRequest",
      "block 3 of size 26 is past the end: the range holds 3 blocks of size 26",
    );
    assert.equal(alloc.allocateIndexed(12n, 28).toString(), "10.0.2.0/28");
  });

  test("release frees exactly what was allocated", () => {
    const alloc = allocator(["10.0.0.0/24"]);
    const block = alloc.allocate(26);
    fails(() => alloc.release(cidr("10.0.0.0/27")), "NotAllocated", "10.0.0.0/27 is not allocated");
    fails(() => alloc.release(cidr("10.0.0.0/25")), "NotAllocated", "10.0.0.0/25 is not allocated");
    fails(() => alloc.release(cidr("10.0.0.64/26")), "NotAllocated", "10.0.0.64/26 is not allocated");
    fails(() => alloc.release(cidr("10.9.0.0/26")), "NotAllocated", "10.9.0.0/26 is not allocated");
    assert.ok(alloc.isAllocated(block));
    assert.equal(alloc.usage().allocated, 64n);
    alloc.release(block);
    assert.ok(!alloc.isAllocated(block));
    fails(() => alloc.release(block), "NotAllocated", "10.0.0.0/26 is not allocated");
    assert.deepEqual(strings(alloc.freeBlocks()), ["10.0.0.0/24"]);
  });

  test("usage is exact", () => {
    const alloc = allocator(["10.0.0.0/24", "10.0.2.0/25"]);
    assert.equal(alloc.allocate(26).toString(), "10.0.2.0/26");
    assert.equal(alloc.allocate(32).toString(), "10.0.2.64/32");
    assert.deepEqual(alloc.usage(), {
      total: 384n,
      allocated: 65n,
      free: 319n,
      excluded: 0n,
      cooling: 0n,
      largestFree: 24,
      freeBlockCount: 7,
    });
  });
});

describe("live pool changes (§4)", () => {
  test("added entries are allocatable at once", () => {
    const alloc = allocator(["10.0.0.0/30"]);
    for (let i = 0; i < 4; i++) alloc.allocate(32);
    fails(() => alloc.allocate(32), "Busy", "allocation with size 32 failed");
    alloc.setPool(parsePool(["10.0.0.0/30", "10.0.0.4/30"]).blocks);
    assert.deepEqual(strings(alloc.blocks()), ["10.0.0.0/29"]);
    assert.equal(alloc.allocate(32).toString(), "10.0.0.4/32");
  });

  test("removed entries stop being allocatable; their allocations stay until released", () => {
    const alloc = allocator(["10.0.0.0/24", "10.0.1.0/24"]);
    const kept = alloc.allocate(25);
    alloc.reserve(cidr("10.0.1.0/26"));
    alloc.setPool(parsePool(["10.0.0.0/24"]).blocks);
    assert.deepEqual(strings(alloc.pendingRemovals()), ["10.0.1.0/26"]);
    assert.deepEqual(strings(alloc.allocations()), ["10.0.0.0/25", "10.0.1.0/26"]);
    assert.ok(alloc.isAllocated(cidr("10.0.1.0/26")));
    assert.ok(!alloc.contains(cidr("10.0.1.0/26")));
    fails(
      () => alloc.reserve(cidr("10.0.1.64/26")),
      "Outside",
      "10.0.1.64/26 is outside the range (10.0.0.0/24)",
    );
    assert.equal(alloc.usage().total, 256n);
    alloc.release(cidr("10.0.1.0/26"));
    assert.deepEqual(strings(alloc.pendingRemovals()), []);
    assert.deepEqual(strings(alloc.freeBlocks()), ["10.0.0.128/25"]);
    alloc.setPool(parsePool(["10.0.0.0/23"]).blocks);
    assert.deepEqual(strings(alloc.freeBlocks()), ["10.0.0.128/25", "10.0.1.0/24"]);
    alloc.release(kept);
    assert.deepEqual(strings(alloc.freeBlocks()), ["10.0.0.0/23"]);
  });

  test("an allocation that covers removed and kept space keeps the kept part busy until released", () => {
    const alloc = allocator(["10.0.0.0/24"]);
    alloc.allocate(24);
    alloc.setPool(parsePool(["10.0.0.0/25"]).blocks);
    assert.deepEqual(strings(alloc.pendingRemovals()), ["10.0.0.0/24"]);
    assert.deepEqual(alloc.usage(), {
      total: 128n,
      allocated: 128n,
      free: 0n,
      excluded: 0n,
      cooling: 0n,
      largestFree: undefined,
      freeBlockCount: 0,
    });
    fails(() => alloc.allocate(32), "Busy", "allocation with size 32 failed");
    alloc.release(cidr("10.0.0.0/24"));
    assert.deepEqual(strings(alloc.freeBlocks()), ["10.0.0.0/25"]);
    assert.equal(alloc.allocate(32).toString(), "10.0.0.0/32");
  });

  test("mode changes apply to later allocations", () => {
    const alloc = allocator(["10.0.0.0/24"]);
    const first = alloc.allocate(26);
    alloc.release(first);
    alloc.setMode("RoundRobin");
    assert.equal(alloc.allocate(26).toString(), "10.0.0.0/26");
    assert.equal(alloc.allocate(26).toString(), "10.0.0.64/26");
    alloc.release(cidr("10.0.0.0/26"));
    assert.equal(alloc.allocate(26).toString(), "10.0.0.128/26");
    alloc.setMode("FirstMatch");
    assert.equal(alloc.allocate(26).toString(), "10.0.0.0/26");
    fails(
      () => alloc.setMode("Random" as Mode),
      "InvalidMode",
      'invalid mode "Random": use FirstMatch or RoundRobin',
    );
  });
});

describe("rebuild", () => {
  const blocks = (family: Family, ...ranges: string[]) => ({ family, blocks: parsePool(ranges).blocks });

  test("restores allocations and free space", () => {
    const { allocator: alloc, rejected } = Allocator.rebuild(blocks(4, "10.0.0.0/24"), [
      cidr("10.0.0.64/26"),
      cidr("10.0.0.5/32"),
    ]);
    assert.deepEqual(rejected, []);
    assert.deepEqual(strings(alloc.allocations()), ["10.0.0.5/32", "10.0.0.64/26"]);
    assert.deepEqual(strings(alloc.freeBlocks()), [
      "10.0.0.0/30",
      "10.0.0.4/32",
      "10.0.0.6/31",
      "10.0.0.8/29",
      "10.0.0.16/28",
      "10.0.0.32/27",
      "10.0.0.128/25",
    ]);
  });

  test("reports overlapping and out-of-pool entries one by one", () => {
    const { allocator: alloc, rejected } = Allocator.rebuild(blocks(4, "10.0.0.0/24"), [
      cidr("10.0.0.0/26"),
      cidr("10.0.0.0/24"),
      cidr("10.0.0.8/29"),
      cidr("10.0.0.64/26"),
      cidr("10.0.0.64/26"),
      cidr("10.0.1.0/24"),
      cidr("fd00::/64"),
    ]);
    assert.deepEqual(
      rejected.map((entry) => [String(entry.cidr), entry.code, entry.reason]),
      [
        ["10.0.0.0/24", "Busy", "10.0.0.0/24 overlaps an earlier allocation"],
        ["10.0.0.8/29", "Busy", "10.0.0.8/29 overlaps an earlier allocation"],
        ["10.0.0.64/26", "Busy", "10.0.0.64/26 overlaps an earlier allocation"],
        ["10.0.1.0/24", "Outside", "10.0.1.0/24 is outside the range (10.0.0.0/24)"],
        ["fd00::/64", "InvalidRequest", "fd00::/64 is IPv6 but the range is IPv4"],
      ],
    );
    assert.equal(rejected.length, 5);
    assert.deepEqual(strings(alloc.allocations()), ["10.0.0.0/26", "10.0.0.64/26"]);
    alloc.checkConsistency();
  });

  test("keepOutside keeps out-of-pool allocations as pending removals", () => {
    const { allocator: alloc, rejected } = Allocator.rebuild(
      blocks(4, "10.0.0.0/24"),
      [cidr("10.0.1.0/26"), cidr("10.0.0.0/23"), cidr("10.0.0.0/26")],
      { keepOutside: true },
    );
    assert.deepEqual(
      rejected.map((entry) => String(entry.cidr)),
      ["10.0.0.0/23"],
    );
    assert.deepEqual(strings(alloc.pendingRemovals()), ["10.0.1.0/26"]);
    alloc.release(cidr("10.0.1.0/26"));
    assert.deepEqual(strings(alloc.freeBlocks()), ["10.0.0.64/26", "10.0.0.128/25"]);
  });

  test("adopt records an allocation outside the pool as pending removal", () => {
    const alloc = allocator(["fd00::/64"]);
    alloc.adopt(cidr("fd01::/64"));
    alloc.adopt(cidr("fd00::1/128"));
    fails(() => alloc.adopt(cidr("fd01::/48")), "Busy", "fd01::/48 already busy");
    fails(() => alloc.adopt(cidr("fd00::/48")), "Busy", "fd00::/48 already busy");
    assert.deepEqual(strings(alloc.pendingRemovals()), ["fd01::/64"]);
    assert.deepEqual(strings(alloc.allocations()), ["fd00::1/128", "fd01::/64"]);
    alloc.checkConsistency();
  });
});
