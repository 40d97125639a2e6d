/**
 * The allocator against a deliberately naive reference model (`ipam-allocator-model.ts`): one entry
 * per address of a 256-address universe, free space recomputed by brute force after every step.
 * Every choice of the allocator (§4, with §7 exclusions and cooldowns) must equal the model's, and
 * the whole observable state must match after each step: an excluded or cooling address is never
 * handed out automatically and the usage counts are exact.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  Allocator,
  Cidr,
  type Exclusion,
  parseCooling,
  parseExclusions,
  parseGateway,
  parsePool,
} from "../../src/ipam/index.ts";
import {
  type Block,
  Model,
  type Outcome,
  outcomeOf,
  UNIVERSE,
  UNIVERSE_BITS,
  type Universe,
} from "./ipam-allocator-model.ts";

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

type Entry = { first: number; last: number; asCidr: boolean };
type Op =
  | { kind: "alloc"; hostBits: number; withNow: boolean }
  | { kind: "reserve"; offset: number; hostBits: number }
  | { kind: "adopt"; offset: number; hostBits: number }
  | { kind: "release"; pick: number; coolFor: number }
  | { kind: "releaseOther"; offset: number; hostBits: number }
  | { kind: "setPool"; entries: Entry[] }
  | { kind: "exclude"; entries: Entry[]; gateway: number | undefined }
  | { kind: "tick"; ms: number }
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
/** Exclusions: mostly a few small entries, so the pool keeps usable space. */
const smallEntryArb: fc.Arbitrary<Entry> = fc
  .record({ a: fc.nat(UNIVERSE - 1), length: fc.nat(8) })
  .map(({ a, length }) => ({ first: a, last: Math.min(UNIVERSE - 1, a + length), asCidr: false }));
const exclusionsArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant<Entry[]>([]) },
  { weight: 6, arbitrary: fc.array(smallEntryArb, { minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.array(entryArb, { minLength: 1, maxLength: 2 }) },
);
const gatewayArb = fc.option(fc.nat(UNIVERSE - 1), { nil: undefined });
/** Mostly small blocks, so pools fill up; sometimes too large for any pool block. */
const hostBitsArb = fc.oneof(fc.nat(2), fc.nat(UNIVERSE_BITS + 1));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("alloc" as const),
      hostBits: hostBitsArb,
      withNow: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("reserve" as const),
      offset: fc.nat(UNIVERSE - 1),
      hostBits: fc.nat(UNIVERSE_BITS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("adopt" as const),
      offset: fc.nat(UNIVERSE - 1),
      hostBits: fc.nat(UNIVERSE_BITS),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("release" as const),
      pick: fc.nat(),
      coolFor: fc.oneof(fc.constant(0), fc.nat(6)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("releaseOther" as const),
      offset: fc.nat(UNIVERSE - 1),
      hostBits: fc.nat(UNIVERSE_BITS),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("setPool" as const), entries: entriesArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("exclude" as const),
      entries: exclusionsArb,
      gateway: gatewayArb,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("tick" as const), ms: fc.nat(3) }) },
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

function address(universe: Universe, offset: number): string {
  return Cidr.of(universe.family, universe.base + BigInt(offset), universe.width).addressString();
}

function entryText(universe: Universe, entry: Entry): string {
  if (entry.asCidr) {
    const hostBits = Math.log2(entry.last - entry.first + 1);
    return `${address(universe, entry.first)}/${universe.width - hostBits}`;
  }
  return entry.first === entry.last
    ? address(universe, entry.first)
    : `${address(universe, entry.first)}-${address(universe, entry.last)}`;
}

function membership(entries: Entry[]): boolean[] {
  const member = new Array<boolean>(UNIVERSE).fill(false);
  for (const entry of entries) for (let i = entry.first; i <= entry.last; i++) member[i] = true;
  return member;
}

function applyPool(model: Model, universe: Universe, entries: Entry[]): Cidr[] {
  model.setPool(membership(entries));
  const pool = parsePool(entries.map((entry) => entryText(universe, entry)));
  assert.deepEqual(
    pool.blocks.map(String),
    model.poolBlocks().map((block) => model.cidr(block)),
  );
  return pool.blocks;
}

function applyExclusions(model: Model, universe: Universe, entries: Entry[], gateway?: number): Exclusion[] {
  const excluded = membership(entries);
  if (gateway !== undefined) excluded[gateway] = true;
  model.setExcluded(excluded);
  const exclusions = parseExclusions(
    entries.map((entry) => entryText(universe, entry)),
    universe.family,
  );
  if (gateway !== undefined) exclusions.push(parseGateway(address(universe, gateway), universe.family));
  return exclusions;
}

/** Addresses (offsets) covered by the blocks. */
function offsets(universe: Universe, blocks: Cidr[]): number[] {
  return blocks
    .flatMap((block) =>
      Array.from({ length: Number(block.size) }, (_, i) => Number(block.start - universe.base) + i),
    )
    .sort((a, b) => a - b);
}

function checkState(allocator: Allocator, model: Model): void {
  allocator.checkConsistency();
  const { universe } = model;
  const text = (blocks: Block[]): string[] =>
    [...blocks]
      .sort((a, b) => a.offset - b.offset || a.hostBits - b.hostBits)
      .map((block) => model.cidr(block));
  assert.deepEqual(allocator.allocations().map(String), text(model.allocations));
  assert.deepEqual(allocator.freeBlocks().map(String), text(model.freeBlocks()));
  assert.deepEqual(allocator.pendingRemovals().map(String), text(model.pending()));
  assert.deepEqual(allocator.excludedAllocations().map(String), text(model.excludedAllocations()));
  assert.deepEqual(offsets(universe, allocator.excludedBlocks()), model.excludedFree());
  const cooling = new Array<number | undefined>(UNIVERSE).fill(undefined);
  for (const { cidr, until } of allocator.coolingBlocks()) {
    for (const offset of offsets(universe, [cidr])) cooling[offset] = until;
  }
  assert.deepEqual(cooling, model.cooling);
  const ends = model.cooling.filter((until) => until !== undefined);
  assert.equal(allocator.nextCoolingEnd(), ends.length === 0 ? undefined : Math.min(...ends));
  const free = model.freeBlocks();
  const total = model.inPool.filter(Boolean).length;
  const freeCount = free.reduce((sum, block) => sum + (1 << block.hostBits), 0);
  const excludedCount = model.excludedFree().length;
  const largest = Model.largest(free);
  assert.deepEqual(allocator.usage(), {
    total: BigInt(total),
    allocated: BigInt(total - freeCount - excludedCount - ends.length),
    free: BigInt(freeCount),
    excluded: BigInt(excludedCount),
    cooling: BigInt(ends.length),
    largestFree: largest < 0 ? undefined : universe.width - largest,
    freeBlockCount: free.length,
  });
  assert.deepEqual(allocator.exportCursors(), model.exportedCursors());
}

interface Start {
  pool: Entry[];
  exclusions: Entry[];
  roundRobin: boolean;
}

function run(universe: Universe, start: Start, ops: Op[]): void {
  Allocator.generalIPv6KeysForTests = universe.generalKeys === true;
  try {
    runSteps(universe, start, ops);
  } finally {
    Allocator.generalIPv6KeysForTests = false;
  }
}

function runSteps(universe: Universe, start: Start, ops: Op[]): void {
  const model = new Model(universe);
  const { family, width } = universe;
  let blocks = applyPool(model, universe, start.pool);
  let exclusions = applyExclusions(model, universe, start.exclusions);
  model.mode = start.roundRobin ? "RoundRobin" : "FirstMatch";
  let allocator = new Allocator({ family, blocks, mode: model.mode, exclusions });
  checkState(allocator, model);
  const toCidr = (offset: number, hostBits: number): Cidr => {
    const aligned = offset - (offset % (1 << hostBits));
    return Cidr.of(family, universe.base + BigInt(aligned), width - hostBits);
  };
  const show = (outcome: Outcome | undefined): string =>
    outcome === undefined
      ? "ok"
      : "code" in outcome
        ? `${outcome.code} ${outcome.until}`
        : model.cidr(outcome);
  for (const op of ops) {
    switch (op.kind) {
      case "alloc": {
        if (op.withNow) model.expire();
        const expected = model.allocate(op.hostBits);
        const options = op.withNow ? { now: model.now } : undefined;
        const actual = outcomeOf(universe, () => allocator.allocate(width - op.hostBits, options));
        assert.equal(show(actual), show(expected), `alloc /${width - op.hostBits}`);
        break;
      }
      case "reserve": {
        const cidr = toCidr(op.offset, op.hostBits);
        const block = { offset: Number(cidr.start - universe.base), hostBits: op.hostBits };
        const expected = model.reserve(block);
        const actual = outcomeOf(universe, () => {
          allocator.reserve(cidr);
          return cidr;
        });
        assert.equal(show(actual), show(expected), `reserve ${cidr}`);
        break;
      }
      case "adopt": {
        const cidr = toCidr(op.offset, op.hostBits);
        const expected = model.adopt({ offset: Number(cidr.start - universe.base), hostBits: op.hostBits });
        const actual = outcomeOf(universe, () => {
          allocator.adopt(cidr);
          return cidr;
        });
        assert.equal(show(actual), show(expected), `adopt ${cidr}`);
        break;
      }
      case "release": {
        const block = model.allocations[op.pick % Math.max(1, model.allocations.length)];
        if (block === undefined) break;
        const cidr = toCidr(block.offset, block.hostBits);
        const coolUntil = op.coolFor === 0 ? undefined : model.now + op.coolFor;
        assert.equal(model.release(block, coolUntil), undefined);
        const actual = outcomeOf(universe, () => {
          allocator.release(cidr, { coolUntil });
          return undefined;
        });
        assert.equal(show(actual), "ok", `release ${cidr}`);
        break;
      }
      case "releaseOther": {
        const cidr = toCidr(op.offset, op.hostBits);
        const expected = model.release({ offset: Number(cidr.start - universe.base), hostBits: op.hostBits });
        const actual = outcomeOf(universe, () => {
          allocator.release(cidr);
          return undefined;
        });
        assert.equal(show(actual), show(expected && { code: expected }), `release ${cidr}`);
        break;
      }
      case "setPool":
        blocks = applyPool(model, universe, op.entries);
        allocator.setPool(blocks);
        break;
      case "exclude":
        exclusions = applyExclusions(model, universe, op.entries, op.gateway);
        allocator.setExclusions(exclusions);
        break;
      case "tick": {
        model.now += op.ms;
        const freed = model.expire();
        assert.deepEqual(offsets(universe, allocator.expire(model.now)), freed);
        break;
      }
      case "mode":
        model.mode = op.roundRobin ? "RoundRobin" : "FirstMatch";
        allocator.setMode(model.mode);
        break;
      case "roundTrip": {
        const { allocator: rebuilt, rejected } = Allocator.rebuild(
          {
            family,
            blocks,
            mode: model.mode,
            cursors: allocator.exportCursors(),
            exclusions,
            cooling: parseCooling(allocator.exportCooling(), family),
          },
          allocator.allocations(),
          { keepOutside: true },
        );
        assert.deepEqual(rejected, []);
        allocator = rebuilt;
        break;
      }
      case "indexed": {
        const expected = model.indexed(op.index, op.hostBits);
        const actual = outcomeOf(universe, () =>
          allocator.allocateIndexed(BigInt(op.index), width - op.hostBits),
        );
        assert.equal(show(actual), show(expected), `indexed ${op.index}`);
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
      exclusionsArb,
      fc.boolean(),
      fc.array(opArb, { minLength: 10, maxLength: 150, size: "max" }),
      (universe, pool, exclusions, roundRobin, ops) => run(universe, { pool, exclusions, roundRobin }, ops),
    ),
    { numRuns: Number(process.env.IPAM_PROPERTY_RUNS ?? "200") },
  );
});
