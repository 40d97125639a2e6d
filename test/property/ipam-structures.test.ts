/**
 * The allocator's data structures against plain models: the B+ tree against a sorted array (sizes
 * that force splits, underfull nodes and unlinking), the hash tables against Map (clusters, backward
 * shift deletion, growth).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type BlockTable,
  Float64BlockTable,
  Int32BlockTable,
  StringBlockTable,
} from "../../src/ipam/block-table.ts";
import { OrderedSet } from "../../src/ipam/ordered-set.ts";

type SetOp = { kind: "add" | "delete" | "ceil" | "has"; key: number };

const setOps = fc.array(
  fc.record({
    kind: fc.constantFrom("add" as const, "add" as const, "delete" as const, "ceil" as const, "has" as const),
    key: fc.nat(5000),
  }),
  { minLength: 1, maxLength: 3000 },
);

function lowerBound(sorted: number[], key: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((sorted[mid] as number) < key) low = mid + 1;
    else high = mid;
  }
  return low;
}

function checkSet<K extends number | string>(ops: SetOp[], toKey: (n: number) => K, bulk: number[]): void {
  const model = [...new Set(bulk)].sort((a, b) => a - b);
  const set = OrderedSet.fromSorted(model.map(toKey));
  for (const { kind, key } of ops) {
    const at = lowerBound(model, key);
    const present = model[at] === key;
    switch (kind) {
      case "add":
        assert.equal(set.add(toKey(key)), !present);
        if (!present) model.splice(at, 0, key);
        break;
      case "delete":
        assert.equal(set.delete(toKey(key)), present);
        if (present) model.splice(at, 1);
        break;
      case "ceil":
        assert.equal(set.ceil(toKey(key)), model[at] === undefined ? undefined : toKey(model[at] as number));
        break;
      case "has":
        assert.equal(set.has(toKey(key)), present);
        break;
    }
    assert.equal(set.size, model.length);
    assert.equal(set.min(), model.length === 0 ? undefined : toKey(model[0] as number));
    assert.equal(set.max(), model.length === 0 ? undefined : toKey(model[model.length - 1] as number));
  }
  assert.deepEqual(set.toArray(), model.map(toKey));
}

test("OrderedSet equals a sorted array (numbers and fixed-width strings)", () => {
  fc.assert(
    fc.property(setOps, fc.array(fc.nat(5000), { maxLength: 2000 }), (ops, bulk) => {
      checkSet(ops, (n) => n * 3 - 7000, bulk);
      checkSet(ops, (n) => String.fromCharCode(0xfd00, n >>> 8, n & 255, 0, 0, 0, 0, 0), bulk);
    }),
    { numRuns: 60 },
  );
});

type TableOp = { kind: "set" | "delete" | "get"; key: number; value: number };

function checkTable<K>(ops: TableOp[], table: BlockTable<K>, toKey: (n: number) => K): void {
  const model = new Map<K, number>();
  for (const { kind, key, value } of ops) {
    const k = toKey(key);
    switch (kind) {
      case "set":
        table.set(k, value);
        model.set(k, value);
        break;
      case "delete":
        assert.equal(table.delete(k), model.delete(k));
        break;
      case "get":
        assert.equal(table.get(k), model.get(k) ?? 0);
        break;
    }
    assert.equal(table.size, model.size);
  }
  for (const [k, v] of model) assert.equal(table.get(k), v);
  const seen = new Map<K, number>();
  table.forEach((k, v) => {
    seen.set(k, v);
  });
  assert.deepEqual(seen, model);
}

test("block tables equal Map (clustered keys, deletions, growth)", () => {
  const tableOps = fc.array(
    fc.record({
      kind: fc.constantFrom("set" as const, "set" as const, "delete" as const, "get" as const),
      // Few distinct keys with structure (multiples of 8 and 256) to make clusters.
      key: fc.oneof(
        fc.nat(300),
        fc.nat(300).map((n) => n * 256),
        fc.nat(300).map((n) => n * 8),
      ),
      value: fc.integer({ min: 1, max: 400 }),
    }),
    { minLength: 1, maxLength: 2000 },
  );
  fc.assert(
    fc.property(tableOps, (ops) => {
      checkTable(ops, new Int32BlockTable(), (n) => (n ^ 0x80000000) | 0);
      checkTable(ops, new Float64BlockTable(), (n) => n * 2 ** 64);
      checkTable(ops, new StringBlockTable(), (n) =>
        String.fromCharCode(0xfd00, 0, 0, n >>> 16, n & 0xffff, 0, 0, 0),
      );
    }),
    { numRuns: 60 },
  );
});

test("OrderedSet stays right when it grows to three levels and shrinks to nothing", () => {
  let seed = 12345;
  const random = (limit: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % limit;
  };
  const ops: SetOp[] = [];
  for (let i = 0; i < 60000; i++) ops.push({ kind: "add", key: random(100000) });
  for (let i = 0; i < 20000; i++) ops.push({ kind: i % 2 === 0 ? "ceil" : "has", key: random(100000) });
  for (let i = 0; i < 100000; i++) ops.push({ kind: "delete", key: i });
  const model: number[] = [];
  const set = new OrderedSet<number>();
  for (const { kind, key } of ops) {
    const at = lowerBound(model, key);
    const present = model[at] === key;
    if (kind === "add") {
      assert.equal(set.add(key), !present);
      if (!present) model.splice(at, 0, key);
    } else if (kind === "delete") {
      assert.equal(set.delete(key), present);
      if (present) model.splice(at, 1);
      if (key % 997 === 0) assert.equal(set.ceil(key), model[at]);
    } else if (kind === "ceil") {
      assert.equal(set.ceil(key), model[at]);
    } else {
      assert.equal(set.has(key), present);
    }
  }
  assert.equal(set.size, 0);
  assert.equal(set.min(), undefined);
  assert.equal(set.ceil(0), undefined);
  set.add(5);
  assert.deepEqual(set.toArray(), [5]);
});
