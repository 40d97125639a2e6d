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

/** Random release + allocate pairs; returns nanoseconds per pair. */
function churn(alloc: Allocator, live: Cidr[], size: number, pairs: number, label: string): number {
  const watch = new Stopwatch();
  for (let i = 0; i < pairs; i++) {
    const index = randomInt(live.length);
    alloc.release(live[index] as Cidr);
    live[index] = alloc.allocate(size);
  }
  const times = watch.read();
  const nanos = (times[1] * 1e6) / pairs;
  line(label, `${rate(pairs, times)} pairs  ${nanos.toFixed(0)} cpu ns/pair`);
  return nanos;
}

function fillTo(alloc: Allocator, live: Cidr[], size: number, target: number): void {
  while (live.length < target) live.push(alloc.allocate(size));
}

function churnAtFills(family: Family, range: string, size: number, slots: number, pairs: number): void {
  for (const mode of ["FirstMatch", "RoundRobin"] as Mode[]) {
    const alloc = allocator(family, range, mode);
    const live: Cidr[] = [];
    const costs: number[] = [];
    for (const percent of [1, 50, 99]) {
      fillTo(alloc, live, size, Math.floor((slots * percent) / 100));
      costs.push(
        churn(
          alloc,
          live,
          size,
          pairs,
          `${mode} churn at ${percent}% fill (${live.length.toLocaleString("en-US")} live)`,
        ),
      );
    }
    line(`${mode} cost at 99% / cost at 1%`, ((costs[2] as number) / (costs[0] as number)).toFixed(2));
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
console.log(`kubipam ipam benchmark (node ${process.version}, scale ${scale})`);

console.log("1. IPv4 10.0.0.0/8, /32");
{
  const alloc = allocator(4, "10.0.0.0/8");
  fill(alloc, 32, million, "FirstMatch allocate");
}
churnAtFills(4, "10.0.0.0/8", 32, Math.round(2 ** 24 * Math.min(1, scale)), million);

console.log("2. IPv6 fd00::/32, /64 (churn on fd00::/44 = 2^20 /64 slots)");
{
  const alloc = allocator(6, "fd00::/32");
  fill(alloc, 64, million, "FirstMatch allocate");
}
churnAtFills(6, "fd00::/44", 64, Math.round(2 ** 20 * Math.min(1, scale)), million);

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
