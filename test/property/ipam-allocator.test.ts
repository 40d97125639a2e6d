/**
 * The allocator against a deliberately naive reference model: one boolean per address of a
 * 256-address universe, free space recomputed by brute force after every step. Every choice of the
 * allocator (§4) must equal the model's, and the whole observable state must match after each step.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Allocator, Cidr, type Family, IpamError, type Mode, parsePool } from "../../src/ipam/index.ts";

const UNIVERSE_BITS = 8;
const UNIVERSE = 1 << UNIVERSE_BITS;

interface Universe {
  family: Family;
  width: number;
  base: bigint;
  /** IPv6: use the general (string) key form instead of offsets from the hull. */
  generalKeys?: boolean;
}

const universes: Universe[] = [
  { family: 4, width: 32, base: 0n },
  { family: 4, width: 32, base: BigInt(10 * 2 ** 24) },
  { family: 4, width: 32, base: 2n ** 32n - 256n },
  { family: 6, width: 128, base: 0n },
  { family: 6, width: 128, base: 0xfd00n << 112n },
  { family: 6, width: 128, base: 2n ** 128n - 256n },
  { family: 6, width: 128, base: 0n, generalKeys: true },
  { family: 6, width: 128, base: 2n ** 128n - 256n, generalKeys: true },
];

interface Block {
  offset: number;
  hostBits: number;
}

/** Brute-force model: addresses are offsets 0..255 from the universe base. */
class Model {
  inPool = new Array<boolean>(UNIVERSE).fill(false);
  allocations: Block[] = [];
  cursors = new Map<number, bigint>();
  mode: Mode = "FirstMatch";

  constructor(readonly universe: Universe) {}

  cidr(block: Block): string {
    const { family, width, base } = this.universe;
    return Cidr.of(family, base + BigInt(block.offset), width - block.hostBits).toString();
  }

  covered(): boolean[] {
    const covered = new Array<boolean>(UNIVERSE).fill(false);
    for (const block of this.allocations) {
      for (let i = 0; i < 1 << block.hostBits; i++) covered[block.offset + i] = true;
    }
    return covered;
  }

  /** Maximal aligned blocks whose addresses all satisfy `member`, ascending by offset. */
  static maximalBlocks(member: (offset: number) => boolean): Block[] {
    const counts = [0];
    for (let i = 0; i < UNIVERSE; i++) counts.push((counts[i] as number) + (member(i) ? 1 : 0));
    const all = (offset: number, length: number): boolean =>
      (counts[offset + length] as number) - (counts[offset] as number) === length;
    const chosen: Block[] = [];
    const taken = new Array<boolean>(UNIVERSE).fill(false);
    for (let hostBits = UNIVERSE_BITS; hostBits >= 0; hostBits--) {
      const length = 1 << hostBits;
      for (let offset = 0; offset < UNIVERSE; offset += length) {
        if (!taken[offset] && all(offset, length)) {
          chosen.push({ offset, hostBits });
          for (let i = 0; i < length; i++) taken[offset + i] = true;
        }
      }
    }
    return chosen.sort((a, b) => a.offset - b.offset);
  }

  poolBlocks(): Block[] {
    return Model.maximalBlocks((i) => this.inPool[i] as boolean);
  }

  freeBlocks(from = 0): Block[] {
    const covered = this.covered();
    return Model.maximalBlocks((i) => i >= from && (this.inPool[i] as boolean) && !covered[i]);
  }

  /** §4 best fit among the given maximal free blocks. */
  static bestFit(blocks: Block[], hostBits: number): Block | undefined {
    let best: Block | undefined;
    for (const block of blocks) {
      if (block.hostBits < hostBits) continue;
      if (best === undefined || block.hostBits < best.hostBits) best = block;
    }
    return best;
  }

  allocate(hostBits: number): Block | IpamError["code"] {
    const largestPool = Math.max(-1, ...this.poolBlocks().map((block) => block.hostBits));
    if (hostBits > largestPool) return "NeverFits";
    const prefix = this.universe.width - hostBits;
    let chosen: Block | undefined;
    if (this.mode === "RoundRobin") {
      const cursor = this.cursors.get(prefix);
      if (cursor !== undefined) {
        const size = 1n << BigInt(hostBits);
        const aligned = ((cursor + size - 1n) / size) * size;
        const from = aligned - this.universe.base;
        if (from < BigInt(UNIVERSE))
          chosen = Model.bestFit(this.freeBlocks(from < 0n ? 0 : Number(from)), hostBits);
        if (chosen === undefined) this.cursors.delete(prefix);
      }
    }
    chosen ??= Model.bestFit(this.freeBlocks(), hostBits);
    if (chosen === undefined) return "Busy";
    const block = { offset: chosen.offset, hostBits };
    this.allocations.push(block);
    if (this.mode === "RoundRobin") {
      const next = this.universe.base + BigInt(block.offset + (1 << hostBits));
      if (next >= 1n << BigInt(this.universe.width)) this.cursors.delete(prefix);
      else this.cursors.set(prefix, next);
    }
    return block;
  }

  reserve(block: Block): IpamError["code"] | undefined {
    const covered = this.covered();
    let inside = true;
    let free = true;
    for (let i = 0; i < 1 << block.hostBits; i++) {
      if (!this.inPool[block.offset + i]) inside = false;
      if (covered[block.offset + i]) free = false;
    }
    if (!inside) return "Outside";
    if (!free) return "Busy";
    this.allocations.push(block);
    return undefined;
  }

  release(block: Block): IpamError["code"] | undefined {
    const index = this.allocations.findIndex(
      (a) => a.offset === block.offset && a.hostBits === block.hostBits,
    );
    if (index < 0) return "NotAllocated";
    this.allocations.splice(index, 1);
    return undefined;
  }

  indexed(index: number, hostBits: number): Block | IpamError["code"] {
    let remaining = index;
    for (const poolBlock of this.poolBlocks()) {
      if (poolBlock.hostBits < hostBits) continue;
      const count = 1 << (poolBlock.hostBits - hostBits);
      if (remaining < count) {
        const block = { offset: poolBlock.offset + remaining * (1 << hostBits), hostBits };
        return this.reserve(block) ?? block;
      }
      remaining -= count;
    }
    return "InvalidRequest";
  }

  pending(): Block[] {
    return this.allocations.filter((block) => {
      for (let i = 0; i < 1 << block.hostBits; i++) if (!this.inPool[block.offset + i]) return true;
      return false;
    });
  }

  exportedCursors(): string[] {
    const { family } = this.universe;
    return [...this.cursors.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(
        ([prefix, address]) => `${Cidr.of(family, address, this.universe.width).addressString()}/${prefix}`,
      );
  }
}

type Entry = { first: number; last: number; asCidr: boolean };
type Op =
  | { kind: "alloc"; hostBits: number }
  | { kind: "reserve"; offset: number; hostBits: number }
  | { kind: "release"; pick: number }
  | { kind: "releaseOther"; offset: number; hostBits: number }
  | { kind: "setPool"; entries: Entry[] }
  | { kind: "mode"; roundRobin: boolean }
  | { kind: "roundTrip" }
  | { kind: "indexed"; index: number; hostBits: number };

const entryArb: fc.Arbitrary<Entry> = fc
  .record({ a: fc.nat(UNIVERSE - 1), b: fc.nat(UNIVERSE - 1), asCidr: fc.boolean(), hostBits: fc.nat(6) })
  .map(({ a, b, asCidr, hostBits }) => {
    if (asCidr) {
      const length = 1 << hostBits;
      const first = a - (a % length);
      return { first, last: first + length - 1, asCidr: true };
    }
    return { first: Math.min(a, b), last: Math.max(a, b), asCidr: false };
  });
const entriesArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Entry[]>([]) },
  { weight: 12, arbitrary: fc.array(entryArb, { minLength: 1, maxLength: 4 }) },
);
/** Mostly small blocks, so pools fill up; sometimes too large for any pool block. */
const hostBitsArb = fc.oneof(fc.nat(2), fc.nat(UNIVERSE_BITS + 1));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("alloc" as const), hostBits: hostBitsArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("reserve" as const),
      offset: fc.nat(UNIVERSE - 1),
      hostBits: fc.nat(UNIVERSE_BITS),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("releaseOther" as const),
      offset: fc.nat(UNIVERSE - 1),
      hostBits: fc.nat(UNIVERSE_BITS),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("setPool" as const), entries: entriesArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("mode" as const), roundRobin: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("roundTrip" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("indexed" as const),
      index: fc.nat(300),
      hostBits: fc.nat(UNIVERSE_BITS),
    }),
  },
);

function entryText(universe: Universe, entry: Entry): string {
  const address = (offset: number): string =>
    Cidr.of(universe.family, universe.base + BigInt(offset), universe.width).addressString();
  if (entry.asCidr) {
    const hostBits = Math.log2(entry.last - entry.first + 1);
    return `${address(entry.first)}/${universe.width - hostBits}`;
  }
  return entry.first === entry.last ? address(entry.first) : `${address(entry.first)}-${address(entry.last)}`;
}

function applyPool(model: Model, universe: Universe, entries: Entry[]): Cidr[] {
  model.inPool.fill(false);
  for (const entry of entries) for (let i = entry.first; i <= entry.last; i++) model.inPool[i] = true;
  const pool = parsePool(entries.map((entry) => entryText(universe, entry)));
  assert.deepEqual(
    pool.blocks.map(String),
    model.poolBlocks().map((block) => model.cidr(block)),
  );
  return pool.blocks;
}

function codeOf(action: () => unknown): IpamError["code"] | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    if (error instanceof IpamError) return error.code;
    throw error;
  }
}

function checkState(allocator: Allocator, model: Model): void {
  allocator.checkConsistency();
  const text = (blocks: Block[]): string[] =>
    [...blocks]
      .sort((a, b) => a.offset - b.offset || a.hostBits - b.hostBits)
      .map((block) => model.cidr(block));
  assert.deepEqual(allocator.allocations().map(String), text(model.allocations));
  assert.deepEqual(allocator.freeBlocks().map(String), text(model.freeBlocks()));
  assert.deepEqual(allocator.pendingRemovals().map(String), text(model.pending()));
  const free = model.freeBlocks();
  const total = model.inPool.filter(Boolean).length;
  const freeCount = free.reduce((sum, block) => sum + (1 << block.hostBits), 0);
  const largest = Math.max(-1, ...free.map((block) => block.hostBits));
  assert.deepEqual(allocator.usage(), {
    total: BigInt(total),
    allocated: BigInt(total - freeCount),
    free: BigInt(freeCount),
    largestFree: largest < 0 ? undefined : model.universe.width - largest,
    freeBlockCount: free.length,
  });
  assert.deepEqual(allocator.exportCursors(), model.exportedCursors());
}

function run(universe: Universe, initial: Entry[], roundRobin: boolean, ops: Op[]): void {
  Allocator.generalIPv6KeysForTests = universe.generalKeys === true;
  try {
    runSteps(universe, initial, roundRobin, ops);
  } finally {
    Allocator.generalIPv6KeysForTests = false;
  }
}

function runSteps(universe: Universe, initial: Entry[], roundRobin: boolean, ops: Op[]): void {
  const model = new Model(universe);
  const { family, width } = universe;
  let blocks = applyPool(model, universe, initial);
  model.mode = roundRobin ? "RoundRobin" : "FirstMatch";
  let allocator = new Allocator({ family, blocks, mode: model.mode });
  checkState(allocator, model);
  const toCidr = (offset: number, hostBits: number): Cidr => {
    const aligned = offset - (offset % (1 << hostBits));
    return Cidr.of(family, universe.base + BigInt(aligned), width - hostBits);
  };
  for (const op of ops) {
    switch (op.kind) {
      case "alloc": {
        const expected = model.allocate(op.hostBits);
        let actual: string | IpamError["code"] | undefined;
        const code = codeOf(() => {
          actual = allocator.allocate(width - op.hostBits).toString();
        });
        assert.equal(
          code ?? actual,
          typeof expected === "string" ? expected : model.cidr(expected),
          `alloc /${width - op.hostBits}`,
        );
        break;
      }
      case "reserve": {
        const cidr = toCidr(op.offset, op.hostBits);
        const expected = model.reserve({ offset: Number(cidr.start - universe.base), hostBits: op.hostBits });
        assert.equal(
          codeOf(() => allocator.reserve(cidr)),
          expected,
          `reserve ${cidr}`,
        );
        break;
      }
      case "release": {
        const block = model.allocations[op.pick % Math.max(1, model.allocations.length)];
        if (block === undefined) break;
        const cidr = toCidr(block.offset, block.hostBits);
        assert.equal(model.release(block), undefined);
        assert.equal(
          codeOf(() => allocator.release(cidr)),
          undefined,
          `release ${cidr}`,
        );
        break;
      }
      case "releaseOther": {
        const cidr = toCidr(op.offset, op.hostBits);
        const expected = model.release({ offset: Number(cidr.start - universe.base), hostBits: op.hostBits });
        assert.equal(
          codeOf(() => allocator.release(cidr)),
          expected,
          `release ${cidr}`,
        );
        break;
      }
      case "setPool":
        blocks = applyPool(model, universe, op.entries);
        allocator.setPool(blocks);
        break;
      case "mode":
        model.mode = op.roundRobin ? "RoundRobin" : "FirstMatch";
        allocator.setMode(model.mode);
        break;
      case "roundTrip": {
        const { allocator: rebuilt, rejected } = Allocator.rebuild(
          { family, blocks, mode: model.mode, cursors: allocator.exportCursors() },
          allocator.allocations(),
          { keepOutside: true },
        );
        assert.deepEqual(rejected, []);
        allocator = rebuilt;
        break;
      }
      case "indexed": {
        const expected = model.indexed(op.index, op.hostBits);
        let actual: string | undefined;
        const code = codeOf(() => {
          actual = allocator.allocateIndexed(BigInt(op.index), width - op.hostBits).toString();
        });
        assert.equal(
          code ?? actual,
          typeof expected === "string" ? expected : model.cidr(expected),
          `indexed ${op.index}`,
        );
        break;
      }
    }
    checkState(allocator, model);
  }
}

test("allocator equals the brute-force model on random operation sequences", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...universes),
      entriesArb,
      fc.boolean(),
      fc.array(opArb, { minLength: 10, maxLength: 150, size: "max" }),
      (universe, initial, roundRobin, ops) => run(universe, initial, roundRobin, ops),
    ),
    { numRuns: Number(process.env.IPAM_PROPERTY_RUNS ?? "200") },
  );
});
