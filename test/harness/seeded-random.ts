// Randomness for the fault suite: seeded, so that a failing run can be replayed with
// KUBIPAM_FAULT_SEED=<seed>.

import { randomBytes } from "node:crypto";

export type Random = () => number;

/** mulberry32: a small, fast, seeded generator of floats in [0, 1). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `KUBIPAM_FAULT_SEED` if set, else a fresh one (print it: it replays the run's decisions). */
export function faultSeed(): number {
  const given = Number(process.env.KUBIPAM_FAULT_SEED);
  return Number.isInteger(given) ? given : randomBytes(4).readUInt32BE(0);
}

export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function shuffle<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
