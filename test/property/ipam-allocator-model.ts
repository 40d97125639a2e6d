/**
 * A deliberately naive reference model of the allocator (§4, §7) for the property test: one entry
 * per address of a 256-address universe (in pool? excluded? cooling until?), free space recomputed
 * by brute force after every step.
 */
import { Cidr, type Family, IpamError, type Mode } from "../../src/ipam/index.ts";

export const UNIVERSE_BITS = 8;
export const UNIVERSE = 1 << UNIVERSE_BITS;

export interface Universe {
  family: Family;
  width: number;
  base: bigint;
  /** IPv6: use the general (string) key form instead of offsets from the hull. */
  generalKeys?: boolean;
}

export interface Block {
  offset: number;
  hostBits: number;
}

/** An operation's result: a block, or an error code with the cooling end time of a cooling `Busy`. */
export type Outcome = Block | { code: IpamError["code"]; until?: number | undefined };

const failure = (code: IpamError["code"], until?: number): Outcome => ({ code, until });

export class Model {
  inPool = new Array<boolean>(UNIVERSE).fill(false);
  excluded = new Array<boolean>(UNIVERSE).fill(false);
  /** Cooldown end per address; only for free pool addresses outside exclusions. */
  cooling = new Array<number | undefined>(UNIVERSE).fill(undefined);
  allocations: Block[] = [];
  cursors = new Map<number, bigint>();
  mode: Mode = "FirstMatch";
  now = 1_800_000_000_000;

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

  /** Free: in the pool, not allocated, not excluded, not cooling (unless cooling ends by `coolBy`). */
  freeBlocks(from = 0, coolBy = Number.NEGATIVE_INFINITY): Block[] {
    const covered = this.covered();
    return Model.maximalBlocks((i) => {
      const cooling = this.cooling[i];
      return (
        i >= from &&
        (this.inPool[i] as boolean) &&
        !covered[i] &&
        !this.excluded[i] &&
        (cooling === undefined || cooling <= coolBy)
      );
    });
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

  static largest(blocks: Block[]): number {
    return Math.max(-1, ...blocks.map((block) => block.hostBits));
  }

  allocate(hostBits: number): Outcome {
    if (hostBits > Model.largest(this.poolBlocks())) return failure("NeverFits");
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
    if (chosen === undefined) {
      const usable = Model.maximalBlocks((i) => (this.inPool[i] as boolean) && !this.excluded[i]);
      if (hostBits > Model.largest(usable)) return failure("NeverFits");
      // The earliest cooldown end after which the size would fit.
      const ends = [...new Set(this.cooling.filter((until) => until !== undefined))].sort((a, b) => a - b);
      return failure(
        "Busy",
        ends.find((end) => Model.bestFit(this.freeBlocks(0, end), hostBits)),
      );
    }
    const block = { offset: chosen.offset, hostBits };
    this.allocations.push(block);
    if (this.mode === "RoundRobin") {
      const next = this.universe.base + BigInt(block.offset + (1 << hostBits));
      if (next >= 1n << BigInt(this.universe.width)) this.cursors.delete(prefix);
      else this.cursors.set(prefix, next);
    }
    return block;
  }

  addresses(block: Block): number[] {
    return Array.from({ length: 1 << block.hostBits }, (_, i) => block.offset + i);
  }

  /** An explicit reservation: takes cooling space, never excluded space. */
  reserve(block: Block): Outcome {
    const covered = this.covered();
    const addresses = this.addresses(block);
    if (!addresses.every((i) => this.inPool[i])) return failure("Outside");
    if (addresses.some((i) => this.excluded[i])) return failure("Excluded");
    if (addresses.some((i) => covered[i])) return failure("Busy");
    for (const i of addresses) this.cooling[i] = undefined;
    this.allocations.push(block);
    return block;
  }

  /** Records an existing holder: anywhere, over excluded and cooling space, never over another. */
  adopt(block: Block): Outcome {
    const covered = this.covered();
    const addresses = this.addresses(block);
    if (addresses.some((i) => covered[i])) return failure("Busy");
    for (const i of addresses) this.cooling[i] = undefined;
    this.allocations.push(block);
    return block;
  }

  release(block: Block, coolUntil?: number): IpamError["code"] | undefined {
    const index = this.allocations.findIndex(
      (a) => a.offset === block.offset && a.hostBits === block.hostBits,
    );
    if (index < 0) return "NotAllocated";
    this.allocations.splice(index, 1);
    if (coolUntil !== undefined) {
      for (const i of this.addresses(block)) {
        if (this.inPool[i] && !this.excluded[i]) this.cooling[i] = coolUntil;
      }
    }
    return undefined;
  }

  /** Ends the cooldowns due now; returns the addresses freed. */
  expire(): number[] {
    const freed: number[] = [];
    this.cooling.forEach((until, i) => {
      if (until !== undefined && until <= this.now) {
        this.cooling[i] = undefined;
        freed.push(i);
      }
    });
    return freed;
  }

  /** The indexed block (§3): like automatic allocation, it takes neither excluded nor cooling space. */
  indexed(index: number, hostBits: number): Outcome {
    let remaining = index;
    for (const poolBlock of this.poolBlocks()) {
      if (poolBlock.hostBits < hostBits) continue;
      const count = 1 << (poolBlock.hostBits - hostBits);
      if (remaining < count) {
        const block = { offset: poolBlock.offset + remaining * (1 << hostBits), hostBits };
        const addresses = this.addresses(block);
        if (addresses.some((i) => this.excluded[i])) return failure("Excluded");
        const covered = this.covered();
        if (addresses.some((i) => covered[i])) return failure("Busy");
        const ends = addresses.map((i) => this.cooling[i]).filter((until) => until !== undefined);
        if (ends.length > 0) return failure("Busy", Math.max(...ends));
        return this.reserve(block);
      }
      remaining -= count;
    }
    return failure("InvalidRequest");
  }

  setPool(inPool: boolean[]): void {
    this.inPool = inPool;
    this.cooling = this.cooling.map((until, i) => (inPool[i] ? until : undefined));
  }

  setExcluded(excluded: boolean[]): void {
    this.excluded = excluded;
    this.cooling = this.cooling.map((until, i) => (excluded[i] ? undefined : until));
  }

  pending(): Block[] {
    return this.allocations.filter((block) => this.addresses(block).some((i) => !this.inPool[i]));
  }

  excludedAllocations(): Block[] {
    return this.allocations.filter((block) => this.addresses(block).some((i) => this.excluded[i]));
  }

  /** Excluded pool addresses not under an allocation. */
  excludedFree(): number[] {
    const covered = this.covered();
    return this.excluded.flatMap((excluded, i) => (excluded && this.inPool[i] && !covered[i] ? [i] : []));
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

/** What an engine call did, in the model's terms (a block as offset/host bits, or the error). */
export function outcomeOf(universe: Universe, action: () => Cidr | undefined): Outcome | undefined {
  try {
    const cidr = action();
    if (cidr === undefined) return undefined;
    return { offset: Number(cidr.start - universe.base), hostBits: universe.width - cidr.prefix };
  } catch (error) {
    if (error instanceof IpamError) return failure(error.code, error.coolingUntil);
    throw error;
  }
}
