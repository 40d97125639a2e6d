// §7 fields of IPAMRange.spec in the API's validation: exclude, gateway, prefix, reuseCooldownSeconds,
// and the prefix reported to Cluster API claims.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMRangeSpec } from "../../src/api/types.ts";
import { claimPrefix, isInvalid, type ValidRangeSpec, validateRangeSpec } from "../../src/api/validation.ts";

function valid(spec: IPAMRangeSpec): ValidRangeSpec {
  const result = validateRangeSpec(spec);
  if (!result.ok) assert.fail(`expected a valid spec, got: ${result.message}`);
  return result;
}

function message(spec: IPAMRangeSpec): string {
  const result = validateRangeSpec(spec);
  assert.equal(result.ok, false, "expected an invalid spec");
  return result.ok ? "" : result.message;
}

describe("range spec validation: exclude and gateway", () => {
  it("takes exclusions and the gateway as excluded entries, the gateway named as such", () => {
    const spec = valid({
      ranges: ["10.0.0.0/24"],
      exclude: ["10.0.0.10-10.0.0.19", "10.0.0.255"],
      gateway: "10.0.0.1",
    });
    assert.deepEqual(
      spec.exclusions.map((e) => e.entry),
      ["10.0.0.10-10.0.0.19", "10.0.0.255", "gateway 10.0.0.1"],
    );
    assert.equal(spec.gateway, "10.0.0.1");
    assert.equal(spec.cooldownSeconds, 0);
  });

  it("prints the gateway canonically", () => {
    assert.equal(valid({ ranges: ["fd00::/64"], gateway: "FD00:0:0:0::1" }).gateway, "fd00::1");
  });

  it("names a bad exclude entry", () => {
    assert.equal(
      message({ ranges: ["10.0.0.0/24"], exclude: ["10.0.0.300"] }),
      'invalid exclude entry "10.0.0.300"',
    );
    assert.equal(
      message({ ranges: ["10.0.0.0/24"], exclude: ["10.0.0.9-10.0.0.1"] }),
      'invalid exclude entry "10.0.0.9-10.0.0.1": end of range before start',
    );
  });

  it("refuses an exclusion of the other family", () => {
    assert.equal(
      message({ ranges: ["10.0.0.0/24"], exclude: ["fd00::1"] }),
      'invalid exclude entry "fd00::1": IPv6 but the range is IPv4',
    );
  });

  it("refuses a bad gateway, and one of the other family", () => {
    assert.equal(
      message({ ranges: ["10.0.0.0/24"], gateway: "10.0.0.0/24" }),
      'invalid gateway "10.0.0.0/24"',
    );
    assert.equal(
      message({ ranges: ["10.0.0.0/24"], gateway: "fd00::1" }),
      'invalid gateway "fd00::1": IPv6 but the range is IPv4',
    );
  });

  it("refuses a gateway outside the range's network", () => {
    assert.equal(
      message({ ranges: ["10.0.0.0/24"], gateway: "10.0.1.1" }),
      'invalid gateway "10.0.1.1": range block 10.0.0.0/24 is not in its network 10.0.1.0/24 (prefix 24)',
    );
  });

  it("accepts a gateway outside the pool but inside the network given by spec.prefix", () => {
    const spec = valid({ ranges: ["10.0.0.10-10.0.0.100"], prefix: 24, gateway: "10.0.0.1" });
    assert.equal(spec.networkPrefix, 24);
  });

  it("does not check the network when the prefix is unknown", () => {
    valid({ ranges: ["10.0.0.0/24", "10.0.5.0/24"], gateway: "10.9.0.1" });
  });

  it("on an empty range, refuses a gateway of another family than the exclusions", () => {
    assert.equal(
      message({ ranges: [], exclude: ["10.0.0.1"], gateway: "fd00::1" }),
      'invalid gateway "fd00::1": IPv6 but the range is IPv4',
    );
  });
});

describe("range spec validation: prefix and cooldown", () => {
  it("refuses a prefix wider than the family", () => {
    assert.equal(message({ ranges: ["10.0.0.0/24"], prefix: 33 }), "prefix 33 too large: network 32");
    assert.equal(message({ ranges: ["10.0.0.0/24"], prefix: -1 }), "invalid prefix -1: use 0 to 32");
  });

  it("bounds reuseCooldownSeconds to 0–86400", () => {
    assert.equal(valid({ ranges: ["10.0.0.0/24"], reuseCooldownSeconds: 86400 }).cooldownSeconds, 86400);
    assert.equal(
      message({ ranges: ["10.0.0.0/24"], reuseCooldownSeconds: 86401 }),
      "invalid reuseCooldownSeconds 86401: use 0 to 86400",
    );
    assert.equal(
      message({ ranges: ["10.0.0.0/24"], reuseCooldownSeconds: 1.5 }),
      "invalid reuseCooldownSeconds 1.5: use 0 to 86400",
    );
  });
});

describe("claimPrefix", () => {
  it("is spec.prefix when set", () => {
    assert.deepEqual(claimPrefix(valid({ ranges: ["10.0.0.0/24", "10.0.1.0/24"], prefix: 23 })), {
      ok: true,
      prefix: 23,
    });
  });

  it("is the prefix of the one CIDR of spec.ranges (host bits ignored)", () => {
    assert.deepEqual(claimPrefix(valid({ ranges: ["10.0.0.5/26"] })), { ok: true, prefix: 26 });
    assert.deepEqual(claimPrefix(valid({ ranges: ["fd00::/64"] })), { ok: true, prefix: 64 });
  });

  it("says spec.prefix is needed otherwise", () => {
    for (const ranges of [["10.0.0.1-10.0.0.9"], ["10.0.0.0/25", "10.0.0.128/25"], ["10.0.0.1"], []]) {
      const result = claimPrefix(valid({ ranges }));
      assert.ok(isInvalid(result), `expected no prefix for ${ranges.join(",")}`);
      assert.match(result.message, /^spec\.prefix is needed: /);
    }
  });
});
