/**
 * Allocation engine benchmark (`npm run bench:ipam`, needs --expose-gc). Prints figures, asserts
 * nothing. `IPAM_BENCH_SCALE=0.1` shrinks every workload for a quick run.
 */
import { Allocator, Cidr, type Family, type Mode, parsePool } from "../src/ipam/index.ts";

const scale = Number(process.env.IPAM_BENCH_SCALE ?? "1");
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error("run with --expose-gc (npm run bench:ipam)");
  process.exit(1);
}

/** Deterministic xorshift32, so runs are comparable. */
let seed = 0x9e3779b9;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
function randomInt(limit: number): number {
  return Math.floor(random() * limit);
}

/** Heap plus typed-array backing stores (the allocator's hash tables live there, outside heapUsed). */
function heapUsed(): number {
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/**
 * A stopwatch for both wall time and this process's CPU time. The machine is shared (other builds
 * and tests run concurrently), so CPU time is the steadier figure; both are printed.
 */
class Stopwatch {
  private readonly wall = performance.now();
  private readonly cpu = process.cpuUsage();

  /** [wall ms, cpu ms] so far. */
  read(): [number, number] {
    const cpu = process.cpuUsage(this.cpu);
    return [performance.now() - this.wall, (cpu.user + cpu.system) / 1000];
  }
}

function rate(count: number, [wall, cpu]: [number, number]): string {
  const perSecond = (millis: number): string => Math.round((count * 1000) / millis).toLocaleString("en-US");
  return `${perSecond(cpu)}/s cpu (${perSecond(wall)}/s wall)`;
}

function line(label: string, value: string): void {
  console.log(`  ${label.padEnd(52)} ${value}`);
}

function allocator(family: Family, range: string, mode: Mode = "FirstMatch"): Allocator {
  return new Allocator({ family, blocks: parsePool([range]).blocks, mode });
}

/** Fills with `count` blocks of `size`; returns the allocations, measuring speed and heap per block. */
function fill(alloc: Allocator, size: number, count: number, label: string): Cidr[] {
  const before = heapUsed();
  const watch = new Stopwatch();
  for (let i = 0; i < count; i++) alloc.allocate(size);
  const times = watch.read();
  const bytes = (heapUsed() - before) / count;
  line(
    `${label}: ${count.toLocaleString("en-US")} × /${size}`,
    `${rate(count, times)}  ${bytes.toFixed(1)} bytes/allocation`,
  );
  return alloc.allocations();
}

/**
 * Live allocations of one size, kept compactly (start addresses in a typed array), the way a
 * controller keeps `status.cidr` text rather than a million objects. A fresh `Cidr` is built for
 * each release.
 */
class LiveSet {
  /** IPv4: one 32-bit address each; IPv6: 8 16-bit groups each. */
  private readonly starts: Uint32Array | Uint16Array;
  count = 0;

  constructor(
    readonly family: Family,
    readonly size: number,
    capacity: number,
  ) {
    this.starts = family === 4 ? new Uint32Array(capacity) : new Uint16Array(8 * capacity);
  }

  set(index: number, cidr: Cidr): void {
    if (this.family === 4) {
      this.starts[index] = cidr.startKey as number;
      return;
    }
    const units = cidr.startKey as string;
    for (let unit = 0; unit < 8; unit++) this.starts[8 * index + unit] = units.charCodeAt(unit);
  }

  push(cidr: Cidr): void {
    this.set(this.count++, cidr);
  }

  get(index: number): Cidr {
    if (this.family === 4) return Cidr.fromKey(4, this.starts[index] as number, this.size);
    const s = this.starts;
    const at = 8 * index;
    const units = String.fromCharCode(
      s[at] as number,
      s[at + 1] as number,
      s[at + 2] as number,
      s[at + 3] as number,
      s[at + 4] as number,
      s[at + 5] as number,
      s[at + 6] as number,
      s[at + 7] as number,
    );
    return Cidr.fromKey(6, units, this.size);
  }
}

/** Random release + allocate pairs; returns CPU nanoseconds per pair. */
function churn(alloc: Allocator, live: LiveSet, pairs: number, label: string): number {
  const watch = new Stopwatch();
  for (let i = 0; i < pairs; i++) {
    const index = randomInt(live.count);
    alloc.release(live.get(index));
    live.set(index, alloc.allocate(live.size));
  }
  const times = watch.read();
  const nanos = (times[1] * 1e6) / pairs;
  line(label, `${rate(pairs, times)} pairs, ${nanos.toFixed(0)} cpu ns/pair`);
  return nanos;
}

function fillTo(alloc: Allocator, live: LiveSet, target: number): void {
  while (live.count < target) live.push(alloc.allocate(live.size));
}

/** One pool filled step by step to 1 %, 50 % and 99 %, churning at each step. */
function churnAtFills(family: Family, range: string, size: number, pairs: number): void {
  const slots = Number(parsePool([range]).blocks[0]?.size ?? 0n) / 2 ** ((family === 4 ? 32 : 128) - size);
  for (const mode of ["FirstMatch", "RoundRobin"] as Mode[]) {
    const alloc = allocator(family, range, mode);
    const live = new LiveSet(family, size, slots);
    const costs: number[] = [];
    for (const percent of [1, 50, 99]) {
      fillTo(alloc, live, Math.floor((slots * percent) / 100));
      const label = `${mode} ${range} churn at ${percent}% (${live.count.toLocaleString("en-US")} live)`;
      costs.push(churn(alloc, live, pairs, label));
    }
    line(`${mode} cost at 99% / cost at 1%`, ((costs[2] as number) / (costs[0] as number)).toFixed(2));
  }
}

/**
 * About the same number of live allocations at 1 %, 50 % and 99 % fill (the pool size varies), so
 * the figures show the effect of the fill level alone, not of the working set outgrowing caches.
 */
function churnSameLive(family: Family, base: string, size: number, liveBits: number, pairs: number): void {
  for (const mode of ["FirstMatch", "RoundRobin"] as Mode[]) {
    const costs: number[] = [];
    for (const [percent, poolBits] of [
      [1, liveBits + 7],
      [50, liveBits + 1],
      [99, liveBits],
    ] as const) {
      const range = `${base}/${size - poolBits}`;
      const slots = 2 ** poolBits;
      const alloc = allocator(family, range, mode);
      const live = new LiveSet(family, size, slots);
      fillTo(alloc, live, Math.floor((slots * percent) / 100));
      const label = `${mode} ${range} churn at ${percent}% (${live.count.toLocaleString("en-US")} live)`;
      costs.push(churn(alloc, live, pairs, label));
    }
    line(
      `${mode} cost at 99% / cost at 1% (same live count)`,
      ((costs[2] as number) / (costs[0] as number)).toFixed(2),
    );
  }
}

function mixed(mode: Mode, operations: number): void {
  const alloc = allocator(4, "10.0.0.0/8", mode);
  const live: Cidr[] = [];
  let used = 0;
  const half = 2 ** 23;
  let busy = 0;
  const watch = new Stopwatch();
  for (let i = 0; i < operations; i++) {
    if (used < half || live.length === 0) {
      const size = 20 + randomInt(13);
      try {
        const cidr = alloc.allocate(size);
        live.push(cidr);
        used += 2 ** (32 - size);
      } catch {
        busy++;
      }
    } else {
      const index = randomInt(live.length);
      const cidr = live[index] as Cidr;
      live[index] = live[live.length - 1] as Cidr;
      live.pop();
      alloc.release(cidr);
      used -= 2 ** (32 - cidr.prefix);
    }
  }
  const times = watch.read();
  const usage = alloc.usage();
  line(
    `${mode}: ${operations.toLocaleString("en-US")} ops at ~50% fill`,
    `${rate(operations, times)}  (${usage.freeBlockCount.toLocaleString("en-US")} free blocks, ${busy} busy)`,
  );
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    const item = items[i] as T;
    items[i] = items[j] as T;
    items[j] = item;
  }
  return items;
}

function rebuild(family: Family, range: string, list: Cidr[], label: string): void {
  const blocks = parsePool([range]).blocks;
  const before = heapUsed();
  const watch = new Stopwatch();
  const { allocator: rebuilt, rejected } = Allocator.rebuild({ family, blocks }, list);
  const [wall, cpu] = watch.read();
  const bytes = (heapUsed() - before) / list.length;
  line(
    `${label}: ${list.length.toLocaleString("en-US")} allocations`,
    `${cpu.toFixed(0)} ms cpu (${wall.toFixed(0)} ms wall)  ${bytes.toFixed(1)} bytes/allocation, ${rejected.length} rejected, ${rebuilt.usage().freeBlockCount.toLocaleString("en-US")} free blocks`,
  );
}

const million = Math.max(1000, Math.round(1_000_000 * scale));
/** log2 of the live allocations in the same-live-count series (2^20 at full scale). */
const liveBits = Math.max(10, Math.round(Math.log2(2 ** 20 * scale)));
/** Smaller scales shrink the pools of the fill series by this many bits. */
const shrinkBits = Math.max(0, Math.round(-Math.log2(scale)));
console.log(`kubipam ipam benchmark (node ${process.version}, scale ${scale})`);

console.log("1. IPv4 10.0.0.0/8, /32");
{
  const alloc = allocator(4, "10.0.0.0/8");
  fill(alloc, 32, million, "FirstMatch allocate");
}
churnAtFills(4, `10.0.0.0/${8 + shrinkBits}`, 32, million);
churnSameLive(4, "8.0.0.0", 32, liveBits, million);

console.log("2. IPv6 fd00::/32, /64 (fill series on fd00::/40: 2^24 /64 slots, like IPv4 /8 of /32)");
{
  const alloc = allocator(6, "fd00::/32");
  fill(alloc, 64, million, "FirstMatch allocate");
}
churnAtFills(6, `fd00::/${40 + shrinkBits}`, 64, million);
churnSameLive(6, "fd00::", 64, liveBits, million);

console.log("3. Mixed sizes /20–/32 on 10.0.0.0/8");
mixed("FirstMatch", million);
mixed("RoundRobin", million);

console.log("4. Rebuild from a list (shuffled)");
{
  const sequential = allocator(4, "10.0.0.0/8");
  for (let i = 0; i < million; i++) sequential.allocate(32);
  rebuild(4, "10.0.0.0/8", shuffle(sequential.allocations()), "IPv4 /32, contiguous");
}
{
  const scattered = new Set<number>();
  while (scattered.size < million) scattered.add(randomInt(2 ** 24));
  const list = shuffle([...scattered].map((offset) => Cidr.fromKey(4, 10 * 2 ** 24 + offset, 32)));
  rebuild(4, "10.0.0.0/8", list, "IPv4 /32, scattered");
}
{
  const scattered = new Set<number>();
  while (scattered.size < million) scattered.add(randomInt(2 ** 32));
  const list = shuffle(
    [...scattered].map((offset) => Cidr.of(6, (0xfd00n << 112n) + (BigInt(offset) << 64n), 64)),
  );
  rebuild(6, "fd00::/32", list, "IPv6 /64, scattered");
}
