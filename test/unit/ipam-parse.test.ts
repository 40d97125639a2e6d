/** §2: range entries, canonical pools, modes and chunk sizes — every example and message. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Cidr, IpamError, parsePool, validateChunkSize, validateMode } from "../../src/ipam/index.ts";

function pool(...entries: string[]): string[] {
  return parsePool(entries).blocks.map(String);
}

function fails(action: () => unknown, code: IpamError["code"], message: string): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof IpamError, `not an IpamError: ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.code, code);
    return true;
  });
}

describe("range entries (§2)", () => {
  test("a CIDR; host bits are ignored", () => {
    assert.deepEqual(pool("10.0.0.0/16"), ["10.0.0.0/16"]);
    assert.deepEqual(pool("10.0.0.5/24"), ["10.0.0.0/24"]);
    assert.deepEqual(pool("fd00::/48"), ["fd00::/48"]);
    assert.deepEqual(pool("fd00::1:2:3/64"), ["fd00::/64"]);
  });

  test("an inclusive range; a-a is one address", () => {
    assert.deepEqual(pool("10.0.0.8-10.0.0.15"), ["10.0.0.8/29"]);
    assert.deepEqual(pool("10.0.0.9-10.0.0.14"), [
      "10.0.0.9/32",
      "10.0.0.10/31",
      "10.0.0.12/31",
      "10.0.0.14/32",
    ]);
    assert.deepEqual(pool("10.0.0.7-10.0.0.7"), ["10.0.0.7/32"]);
    assert.deepEqual(pool("fd00::-fd00::ff"), ["fd00::/120"]);
  });

  test("a single IP", () => {
    assert.deepEqual(pool("10.0.0.7"), ["10.0.0.7/32"]);
    assert.deepEqual(pool("fd00::7"), ["fd00::7/128"]);
  });

  test("the pool is the minimal cover of the union, ascending", () => {
    assert.deepEqual(pool("10.0.1.0/24", "10.0.2.0/24"), ["10.0.1.0/24", "10.0.2.0/24"]);
    assert.deepEqual(pool("10.0.1.0/24", "10.0.0.0/24"), ["10.0.0.0/23"]);
    assert.deepEqual(pool("10.0.0.0/24", "10.0.0.128/25", "10.0.0.5"), ["10.0.0.0/24"]);
    assert.deepEqual(pool("10.0.0.0-10.0.0.200", "10.0.0.100-10.0.0.255"), ["10.0.0.0/24"]);
    assert.deepEqual(pool("10.0.2.0/24", "10.0.0.0/24"), ["10.0.0.0/24", "10.0.2.0/24"]);
    assert.deepEqual(pool("0.0.0.0-255.255.255.255"), ["0.0.0.0/0"]);
    assert.deepEqual(pool("::/0", "fd00::/8"), ["::/0"]);
  });

  test("an empty list is an empty pool without a family", () => {
    assert.deepEqual(parsePool([]), { family: undefined, blocks: [] });
  });

  test("IPv6 in any valid spelling, printed lower case (RFC 5952)", () => {
    assert.deepEqual(pool("FD00:0:0:0:0:0:0:0/16"), ["fd00::/16"]);
    assert.deepEqual(pool("2001:DB8::1"), ["2001:db8::1/128"]);
    assert.deepEqual(pool("2001:0db8:0000:0000:0001:0000:0000:0001"), ["2001:db8::1:0:0:1/128"]);
    assert.deepEqual(pool("2001:db8:0:1:1:1:1:1"), ["2001:db8:0:1:1:1:1:1/128"]);
    assert.deepEqual(pool("::"), ["::/128"]);
    assert.deepEqual(pool("::1"), ["::1/128"]);
    assert.deepEqual(pool("1::"), ["1::/128"]);
    assert.deepEqual(pool("64:ff9b::192.0.2.33"), ["64:ff9b::c000:221/128"]);
    assert.deepEqual(pool("1:0:0:1:0:0:0:1"), ["1:0:0:1::1/128"]);
    assert.deepEqual(pool("1:0:0:0:1:0:0:1"), ["1::1:0:0:1/128"]);
  });

  test("::ffff:a.b.c.d forms count as IPv4", () => {
    assert.deepEqual(parsePool(["::ffff:10.1.2.3"]), { family: 4, blocks: [Cidr.parse("10.1.2.3/32")] });
    assert.deepEqual(pool("::FFFF:10.1.2.3"), ["10.1.2.3/32"]);
    assert.deepEqual(pool("::ffff:a01:203"), ["10.1.2.3/32"]);
    assert.deepEqual(pool("::ffff:10.0.0.0/104"), ["10.0.0.0/8"]);
    assert.deepEqual(pool("::ffff:10.0.0.1-::ffff:10.0.0.2"), ["10.0.0.1/32", "10.0.0.2/32"]);
    assert.deepEqual(pool("10.0.0.0/24", "::ffff:10.0.1.0/120"), ["10.0.0.0/23"]);
  });

  test("strict parsing: unparsable entries", () => {
    for (const entry of [
      "",
      " 10.0.0.0/8",
      "10.0.0.0/8 ",
      "10.0.0.0 /8",
      "010.0.0.0/8",
      "10.0.0.01",
      "10.0.0.256",
      "10.0.0",
      "10.0.0.0.0",
      "10.0.0.0/33",
      "10.0.0.0/08",
      "10.0.0.0/",
      "10.0.0.0/-1",
      "fd00::/129",
      "fd00:::1",
      "fd00::1::2",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "12345::",
      "fd00::g",
      "fe80::1%eth0",
      "::ffff:1.2.3.04",
      "10.0.0.1-",
      "-10.0.0.1",
      "10.0.0.1-10.0.0.2-10.0.0.3",
      "10.0.0.1 - 10.0.0.2",
      "x",
    ]) {
      fails(() => parsePool([entry]), "InvalidRange", `invalid ip range "${entry}"`);
    }
  });

  test("range messages (exact)", () => {
    fails(
      () => parsePool(["10.0.0.1-fd00::1"]),
      "InvalidRange",
      'invalid ip range "10.0.0.1-fd00::1": start and end ip have different version',
    );
    fails(
      () => parsePool(["10.0.0.9-10.0.0.1"]),
      "InvalidRange",
      'invalid ip range "10.0.0.9-10.0.0.1": end of range before start',
    );
    fails(
      () => parsePool(["10.0.0.0/8", "fd00::/8"]),
      "MixedFamilies",
      'invalid ip ranges: "10.0.0.0/8" is IPv4 but "fd00::/8" is IPv6: one range holds one family',
    );
    fails(
      () => parsePool(["fd00::/8", "10.0.0.1-10.0.0.2"]),
      "MixedFamilies",
      'invalid ip ranges: "fd00::/8" is IPv6 but "10.0.0.1-10.0.0.2" is IPv4: one range holds one family',
    );
  });
});

describe("mode and chunk size (§2)", () => {
  test("modes", () => {
    assert.equal(validateMode(undefined), "FirstMatch");
    assert.equal(validateMode(""), "FirstMatch");
    assert.equal(validateMode("FirstMatch"), "FirstMatch");
    assert.equal(validateMode("RoundRobin"), "RoundRobin");
    fails(
      () => validateMode("roundrobin"),
      "InvalidMode",
      'invalid mode "roundrobin": use FirstMatch or RoundRobin',
    );
    fails(() => validateMode("Random"), "InvalidMode", 'invalid mode "Random": use FirstMatch or RoundRobin');
  });

  test("chunk sizes", () => {
    assert.equal(validateChunkSize(undefined, 4), 0);
    assert.equal(validateChunkSize(0, 4), 0);
    assert.equal(validateChunkSize(24, 4), 24);
    assert.equal(validateChunkSize(32, 4), 32);
    assert.equal(validateChunkSize(128, 6), 128);
    fails(() => validateChunkSize(33, 4), "InvalidSize", "chunk size 33 too large: network 32");
    fails(() => validateChunkSize(129, 6), "InvalidSize", "chunk size 129 too large: network 128");
    fails(() => validateChunkSize(-1, 4), "InvalidSize", "invalid chunk size -1");
    fails(() => validateChunkSize(1.5, 4), "InvalidSize", "invalid chunk size 1.5");
    fails(() => validateChunkSize(Number.NaN, 4), "InvalidSize", "invalid chunk size NaN");
  });
});

describe("Cidr", () => {
  test("parse, print, compare", () => {
    const block = Cidr.parse("10.0.0.5/24");
    assert.equal(block.toString(), "10.0.0.0/24");
    assert.equal(block.family, 4);
    assert.equal(block.prefix, 24);
    assert.equal(block.start, 0x0a000000n);
    assert.equal(block.end, 0x0a0000ffn);
    assert.equal(block.size, 256n);
    assert.ok(block.contains(Cidr.parse("10.0.0.128/25")));
    assert.ok(!Cidr.parse("10.0.0.128/25").contains(block));
    assert.ok(block.overlaps(Cidr.parse("10.0.0.0/8")));
    assert.ok(!block.overlaps(Cidr.parse("10.0.1.0/24")));
    assert.ok(block.equals(Cidr.parse("10.0.0.0/24")));
    assert.ok(!block.contains(Cidr.parse("fd00::/120")));
    assert.equal(Cidr.parseIP("fd00::1").toString(), "fd00::1/128");
    assert.equal(Cidr.parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/1").toString(), "8000::/1");
    assert.equal(Cidr.parse("fd00::/32").size, 1n << 96n);
    assert.equal(
      Cidr.of(6, (1n << 128n) - 1n, 128).toString(),
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
    );
    fails(() => Cidr.parse("10.0.0.0"), "InvalidRange", 'invalid CIDR "10.0.0.0"');
    fails(() => Cidr.parseIP("10.0.0.0/8"), "InvalidRange", 'invalid IP "10.0.0.0/8"');
  });
});
