/**
 * Parsers and validators on arbitrary input: they either succeed or throw IpamError, never anything
 * else; and what they print parses back to the same thing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  Allocator,
  Cidr,
  IpamError,
  parsePool,
  parseRequest,
  validateChunkSize,
  validateMode,
} from "../../src/ipam/index.ts";

/** Runs `action`; anything thrown must be an IpamError. */
function onlyIpamErrors(action: () => unknown): void {
  try {
    action();
  } catch (error) {
    if (!(error instanceof IpamError)) throw error;
    assert.equal(typeof error.message, "string");
  }
}

/** Strings that look like addresses often enough to reach deep parser paths. */
const addressish = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.stringMatching(/^[0-9a-fA-F:.\-/%# ]{0,48}$/),
  fc.tuple(fc.ipV4(), fc.nat(40)).map(([ip, prefix]) => `${ip}/${prefix}`),
  fc.ipV6(),
  fc.tuple(fc.ipV6(), fc.nat(140)).map(([ip, prefix]) => `${ip}/${prefix}`),
  fc.tuple(fc.ipV4(), fc.ipV4()).map(([a, b]) => `${a}-${b}`),
  fc.tuple(fc.ipV6(), fc.ipV6()).map(([a, b]) => `${a}-${b}`),
);

const anyNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 2 ** 53, 1e308, 24.5),
);

const runs = { numRuns: Number(process.env.IPAM_PROPERTY_RUNS ?? "1500") };

test("parsePool and Cidr parsing throw only IpamError", () => {
  fc.assert(
    fc.property(fc.array(addressish, { maxLength: 4 }), (entries) => {
      onlyIpamErrors(() => parsePool(entries));
      for (const entry of entries) {
        onlyIpamErrors(() => Cidr.parse(entry));
        onlyIpamErrors(() => Cidr.parseIP(entry));
      }
    }),
    runs,
  );
});

test("parseRequest throws only IpamError on any request and size", () => {
  fc.assert(
    fc.property(
      fc.oneof(addressish, fc.constant(undefined)),
      fc.oneof(anyNumber, fc.constant(undefined)),
      fc.constantFrom(4 as const, 6 as const),
      fc.oneof(anyNumber, fc.constant(undefined)),
      (request, size, family, chunkSize) => {
        onlyIpamErrors(() => parseRequest({ request, size }, family, chunkSize));
      },
    ),
    runs,
  );
});

test("mode, chunk size, cursors and sizes throw only IpamError", () => {
  const alloc = new Allocator({ family: 4, blocks: parsePool(["10.0.0.0/24"]).blocks, mode: "RoundRobin" });
  fc.assert(
    fc.property(fc.string(), anyNumber, fc.array(addressish, { maxLength: 3 }), (mode, number, cursors) => {
      onlyIpamErrors(() => validateMode(mode));
      onlyIpamErrors(() => validateChunkSize(number, 4));
      onlyIpamErrors(() => validateChunkSize(number, undefined));
      onlyIpamErrors(() => alloc.setCursors(cursors));
      onlyIpamErrors(() => new Allocator({ family: 6, blocks: [], cursors }));
      onlyIpamErrors(() => alloc.allocate(number));
      onlyIpamErrors(() =>
        alloc.allocateIndexed(BigInt(Math.trunc(Number.isFinite(number) ? number : 0)), 30),
      );
      alloc.checkConsistency();
    }),
    runs,
  );
});

test("printed addresses and blocks parse back to themselves", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.tuple(fc.constant(4 as const), fc.bigInt({ min: 0n, max: 2n ** 32n - 1n }), fc.nat(32)),
        fc.tuple(fc.constant(6 as const), fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }), fc.nat(128)),
      ),
      ([family, address, prefix]) => {
        const block = Cidr.of(family, address, prefix);
        const text = block.toString();
        assert.equal(text, text.toLowerCase());
        const parsed = Cidr.parse(text);
        if (family === 6 && block.prefix >= 96 && block.start >> 32n === 0xffffn) {
          // IPv4-mapped space reads back as IPv4 (§2).
          assert.equal(parsed.family, 4);
          return;
        }
        assert.ok(parsed.equals(block), `${text} → ${parsed}`);
        assert.equal(parsed.start, block.start);
        assert.equal(Cidr.parse(text.toUpperCase()).toString(), text);
      },
    ),
    runs,
  );
});

test("IPv6 spellings from fast-check read the same as their canonical form", () => {
  fc.assert(
    fc.property(fc.ipV6(), (text) => {
      const ip = Cidr.parseIP(text);
      assert.ok(Cidr.parseIP(ip.addressString()).equals(ip));
    }),
    runs,
  );
});
