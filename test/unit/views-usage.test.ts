import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { IPAMAllocation, IPAMRange } from "../../src/api/types.ts";
import { allocationName } from "../../src/api/validation.ts";
import { renderUsage, usageData, usageRows } from "../../src/cli/views/index.ts";

function range(name: string, ranges: string[], extra: Partial<IPAMRange> = {}, namespace = "ns"): IPAMRange {
  return {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMRange",
    metadata: { name, namespace, uid: `uid-${name}` },
    spec: { ranges },
    status: { state: "Ready", message: "" },
    ...extra,
  };
}

function allocation(rangeName: string, cidr: string, request: string, namespace = "ns"): IPAMAllocation {
  return {
    apiVersion: "ipam.mandelsoft.org/v1alpha1",
    kind: "IPAMAllocation",
    metadata: {
      name: allocationName(rangeName, cidr),
      namespace,
      labels: { "ipam.mandelsoft.org/range": rangeName },
    },
    spec: {
      range: { name: rangeName, uid: `uid-${rangeName}` },
      cidr,
      request: { namespace, name: request, uid: `uid-${request}` },
    },
  };
}

describe("views: usage rows", () => {
  it("counts an IPv4 range from its spec and allocation objects", () => {
    const [row] = usageRows(
      [range("v4", ["10.0.0.0/16"])],
      [allocation("v4", "10.0.0.0/24", "a"), allocation("v4", "10.0.1.0/24", "b")],
    );
    assert.ok(row);
    assert.equal(row.family, "IPv4");
    assert.equal(row.size, 65536n);
    assert.equal(row.allocated, 512n);
    assert.equal(row.free, 65024n);
    assert.equal(row.allocations, 2);
    assert.equal(row.largestFree, 17);
    assert.equal(row.conflicts, 0);
  });

  it("counts IPv6 exactly", () => {
    const [row] = usageRows(
      [range("v6", ["fd00::/48"])],
      [allocation("v6", "fd00::/64", "a"), allocation("v6", "fd00:0:0:1::/64", "b")],
    );
    assert.ok(row);
    assert.equal(row.family, "IPv6");
    assert.equal(row.size, 1208925819614629174706176n); // 2^80
    assert.equal(row.allocated, 36893488147419103232n); // 2 × 2^64
    assert.equal(row.free, 1208925819614629174706176n - 36893488147419103232n);
    const data = usageData([row]).items[0];
    assert.equal(data?.size, "1208925819614629174706176");
    assert.equal(data?.allocated, "36893488147419103232");
    assert.equal(data?.free, "1208888926126481755602944");
  });

  it("is right when the status lags behind the allocation objects", () => {
    const lagging = range("lag", ["192.168.0.0/24"], {
      status: { state: "Ready", size: "256", allocated: "0", free: "256" },
    });
    const [row] = usageRows([lagging], [allocation("lag", "192.168.0.0/25", "a")]);
    assert.equal(row?.allocated, 128n);
    assert.equal(row?.free, 128n);
  });

  it("uses only the range's own allocations (same namespace, same range)", () => {
    const rows = usageRows(
      [range("a", ["10.0.0.0/24"]), range("a", ["10.0.0.0/24"], {}, "other")],
      [
        allocation("a", "10.0.0.0/26", "x"),
        allocation("b", "10.0.0.64/26", "y"),
        allocation("a", "10.0.0.128/25", "z", "other"),
      ],
    );
    assert.deepEqual(
      rows.map((r) => [r.namespace, r.name, r.allocated]),
      [
        ["ns", "a", 64n],
        ["other", "a", 128n],
      ],
    );
  });

  it("keeps allocations outside a shrunk pool as pending removals, not as allocated space", () => {
    const [row] = usageRows(
      [range("shrunk", ["10.0.0.0/24"])],
      [allocation("shrunk", "10.0.0.0/25", "a"), allocation("shrunk", "10.0.1.0/24", "b")],
    );
    assert.equal(row?.allocated, 128n);
    assert.deepEqual(row?.pendingRemovals, ["10.0.1.0/24"]);
    assert.equal(row?.allocations, 2);
  });

  it("counts overlapping allocation objects once and reports them as conflicts", () => {
    const [row] = usageRows(
      [range("dup", ["10.0.0.0/24"])],
      [allocation("dup", "10.0.0.0/25", "a"), allocation("dup", "10.0.0.0/26", "b")],
    );
    assert.equal(row?.allocated, 128n);
    assert.equal(row?.conflicts, 1);
  });

  it("marks a range whose spec does not parse as Invalid", () => {
    const [row] = usageRows([range("bad", ["10.0.0.0/8", "fd00::/64"])], []);
    assert.equal(row?.state, "Invalid");
    assert.match(row?.message ?? "", /one range holds one family/);
    assert.match(renderUsage(row ? [row] : []), /Invalid: invalid ip ranges/);
  });

  it("handles an empty pool", () => {
    const [row] = usageRows([range("empty", [])], []);
    assert.equal(row?.size, 0n);
    assert.equal(row?.family, "-");
  });
});

describe("views: usage table", () => {
  const rows = usageRows(
    [range("pods", ["10.0.0.0/16"]), range("v6", ["fd00::/48"], {}, "net")],
    [allocation("pods", "10.0.0.0/17", "a"), allocation("v6", "fd00::/64", "b", "net")],
  );

  it("renders kubectl-style, with a bar", () => {
    assert.equal(
      renderUsage(rows, { namespaces: true }),
      [
        "NAMESPACE   NAME   FAMILY                        SIZE              ALLOCATED                        FREE    USED",
        "net         v6     IPv6     1208925819614629174706176   18446744073709551616   1208907372870555465154560   <0.1%   [#...................]",
        "ns          pods   IPv4                         65536                  32768                       32768   50.0%   [##########..........]",
        "",
      ].join("\n"),
    );
  });

  it("adds state, mode, blocks and ranges with -o wide", () => {
    const text = renderUsage(rows, { wide: true });
    const header = text.split("\n")[0] ?? "";
    for (const column of [
      "STATE",
      "MODE",
      "BLOCKS",
      "LARGEST-FREE",
      "PENDING-REMOVALS",
      "CONFLICTS",
      "RANGES",
    ]) {
      assert.ok(header.includes(column), `${column} in ${header}`);
    }
    assert.ok(!header.includes("NAMESPACE"));
    assert.match(text, /pods .* Ready +FirstMatch +1 +\/17 +0 +0 +10\.0\.0\.0\/16/);
  });
});
