import { setTimeout as delay } from "node:timers/promises";

export interface PollOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Pause between attempts (not a synchronisation: the condition is re-checked each time). */
  intervalMs?: number;
  /** Named in the timeout error. */
  description: string;
  signal?: AbortSignal;
}

/**
 * Calls `check` until it returns a value other than `undefined`, or throws when the deadline passes.
 * Errors thrown by `check` count as "not yet"; the last one is reported on timeout.
 */
export async function pollUntil<T>(check: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 100;
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const value = await check();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.description}${detail}`, {
        cause: lastError,
      });
    }
    await delay(interval, undefined, options.signal ? { signal: options.signal } : {});
  }
}
