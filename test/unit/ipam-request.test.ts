/** §3: sizes and request expressions — every form and every message. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Cidr, IpamError, parseRequest, type RequestPlan } from "../../src/ipam/index.ts";

const FORMS = "use a CIDR, an IP, <n>, /<n>, %<hostbits>, #<count>, <i>/<n> or <i>/%<hostbits>";

function fails(action: () => unknown, code: IpamError["code"], message: string): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof IpamError, `not an IpamError: ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.code, code);
    return true;
  });
}

function plan(
  request: string | undefined,
  family: 4 | 6 = 4,
  size?: number,
  chunkSize?: number,
): RequestPlan {
  return parseRequest({ request, size }, family, chunkSize);
}

describe("effective size (§3)", () => {
  test("spec.size if > 0, else chunkSize if > 0, else W", () => {
    assert.deepEqual(parseRequest({ size: 28 }, 4, 24), { kind: "size", size: 28 });
    assert.deepEqual(parseRequest({}, 4, 24), { kind: "size", size: 24 });
    assert.deepEqual(parseRequest({ size: 0 }, 4, 24), { kind: "size", size: 24 });
    assert.deepEqual(parseRequest({}, 4), { kind: "size", size: 32 });
    assert.deepEqual(parseRequest({}, 4, 0), { kind: "size", size: 32 });
    assert.deepEqual(parseRequest({}, 6), { kind: "size", size: 128 });
    assert.deepEqual(parseRequest({ size: 64 }, 6), { kind: "size", size: 64 });
    assert.deepEqual(parseRequest({ request: "  " }, 4, 24), { kind: "size", size: 24 });
  });

  test("size messages", () => {
    fails(() => parseRequest({ size: -1 }, 4), "InvalidSize", "invalid size -1");
    fails(() => parseRequest({ size: 33 }, 4), "InvalidSize", "size 33 too large: network 32");
    fails(() => parseRequest({ size: 129 }, 6), "InvalidSize", "size 129 too large: network 128");
    fails(() => parseRequest({ size: 1.5 }, 4), "InvalidSize", "invalid size 1.5");
    fails(() => parseRequest({ size: Number.NaN }, 4), "InvalidSize", "invalid size NaN");
    fails(() => parseRequest({ size: Number.POSITIVE_INFINITY }, 4), "InvalidSize", "invalid size Infinity");
  });
});

describe("request expressions (§3)", () => {
  test("a CIDR reserves that block, host bits masked", () => {
    assert.equal(String((plan("10.0.0.5/24") as { cidr: Cidr }).cidr), "10.0.0.0/24");
    assert.deepEqual(plan("10.0.0.0/24"), { kind: "block", cidr: Cidr.parse("10.0.0.0/24") });
    assert.equal(String((plan(" fd00:0:0:1::7/64 ", 6) as { cidr: Cidr }).cidr), "fd00:0:0:1::/64");
  });

  test("an IP reserves that single address", () => {
    assert.deepEqual(plan("10.0.0.5"), { kind: "block", cidr: Cidr.parse("10.0.0.5/32") });
    assert.deepEqual(plan("FD00::5", 6), { kind: "block", cidr: Cidr.parse("fd00::5/128") });
    assert.deepEqual(plan("::ffff:10.0.0.5"), { kind: "block", cidr: Cidr.parse("10.0.0.5/32") });
  });

  test("<n>, /<n>, %<h>, #<count>", () => {
    assert.deepEqual(plan("24"), { kind: "size", size: 24 });
    assert.deepEqual(plan("/24"), { kind: "size", size: 24 });
    assert.deepEqual(plan("%8"), { kind: "size", size: 24 });
    assert.deepEqual(plan("%0"), { kind: "size", size: 32 });
    assert.deepEqual(plan("%64", 6), { kind: "size", size: 64 });
    assert.deepEqual(plan("#257"), { kind: "size", size: 23 });
    assert.deepEqual(plan("#256"), { kind: "size", size: 24 });
    assert.deepEqual(plan("#1"), { kind: "size", size: 32 });
    assert.deepEqual(plan("#2"), { kind: "size", size: 31 });
    assert.deepEqual(plan("#4294967296"), { kind: "size", size: 0 });
    assert.deepEqual(plan("#18446744073709551616", 6), { kind: "size", size: 64 });
  });

  test("<i>/<n> and <i>/%<h>", () => {
    assert.deepEqual(plan("0/24"), { kind: "indexed", index: 0n, size: 24 });
    assert.deepEqual(plan("3/%8"), { kind: "indexed", index: 3n, size: 24 });
    assert.deepEqual(plan("18446744073709551616/128", 6), { kind: "indexed", index: 1n << 64n, size: 128 });
  });

  test("a size that agrees with spec.size is fine; one that does not is invalid", () => {
    assert.deepEqual(plan("/24", 4, 24), { kind: "size", size: 24 });
    assert.deepEqual(plan("10.0.0.0/24", 4, 24), { kind: "block", cidr: Cidr.parse("10.0.0.0/24") });
    fails(
      () => plan("/24", 4, 28),
      "InvalidRequest",
      'invalid request "/24": it means size 24 but size is 28',
    );
    fails(
      () => plan("10.0.0.0/24", 4, 28),
      "InvalidRequest",
      'invalid request "10.0.0.0/24": it means size 24 but size is 28',
    );
  });

  test("sizes beyond the network", () => {
    fails(() => plan("33"), "InvalidSize", "size 33 too large: network 32");
    fails(() => plan("/33"), "InvalidSize", "size 33 too large: network 32");
    fails(() => plan("/129", 6), "InvalidSize", "size 129 too large: network 128");
    fails(
      () => plan("99999999999999999999999"),
      "InvalidSize",
      "size 99999999999999999999999 too large: network 32",
    );
    fails(() => plan("%33"), "InvalidSize", 'invalid request "%33": 33 host bits too many: network 32');
    fails(() => plan("0/33"), "InvalidSize", "size 33 too large: network 32");
    fails(
      () => plan("#4294967297"),
      "InvalidSize",
      'invalid request "#4294967297": count 4294967297 too large: network 32',
    );
    fails(() => plan("#0"), "InvalidRequest", 'invalid request "#0": the count must be at least 1');
  });

  test("a family other than the range's", () => {
    fails(
      () => plan("fd00::/64", 4),
      "InvalidRequest",
      'invalid request "fd00::/64": IPv6 but the range is IPv4',
    );
    fails(
      () => plan("10.0.0.1", 6),
      "InvalidRequest",
      'invalid request "10.0.0.1": IPv4 but the range is IPv6',
    );
  });

  test("anything else names the accepted forms", () => {
    for (const text of [
      "x",
      "-1",
      "+24",
      "024",
      "/",
      "//24",
      "%",
      "#",
      "#-1",
      "1.5",
      "24.0",
      "0x18",
      "/x",
      "a/24",
      "1/2/3",
      "1/",
      "1/%",
      "10.0.0.0/33",
      "10.0.0.256",
      "10.0.0.0 /24",
      "size 24",
      "🙂",
    ]) {
      const trimmed = text.trim();
      assert.throws(
        () => plan(text),
        (error: unknown) =>
          error instanceof IpamError &&
          (error.message === `invalid request "${trimmed}": ${FORMS}` || error.code === "InvalidSize"),
        text,
      );
    }
    fails(() => plan("x"), "InvalidRequest", `invalid request "x": ${FORMS}`);
    fails(() => plan(" 1.5 "), "InvalidRequest", `invalid request "1.5": ${FORMS}`);
  });
});
