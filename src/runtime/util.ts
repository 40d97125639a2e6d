// Small helpers shared by the runtime (and the rest of the project): abortable sleep, polling for a
// condition with a deadline, jittered backoff, Kubernetes time formats.

/** Resolves after `ms`, or early (without error) when `signal` aborts. Returns false if aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(false);
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface PollOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Pause between attempts (not a synchronisation: the condition is re-checked each time). */
  intervalMs?: number;
  /** Named in the timeout error. */
  description: string;
  /** Stops the polling at once, rejecting with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Calls `check` until it returns a value other than `undefined`, or throws when the deadline passes.
 * Errors thrown by `check` count as "not yet"; the last one is reported (as `cause`) on timeout.
 */
export async function pollUntil<T>(
  check: () => T | undefined | Promise<T | undefined>,
  options: PollOptions,
): Promise<T> {
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
    await sleep(interval, options.signal);
  }
}

export interface BackoffOptions {
  /** First delay, ms (default 800, like client-go's reflector). */
  initialMs?: number;
  /** Cap, ms (default 30 s). */
  maxMs?: number;
  /** Growth per step (default 2). */
  factor?: number;
  /** Each delay is stretched by a random factor in [1, 1 + jitter] (default 1). */
  jitter?: number;
}

/** Exponential backoff with jitter. */
export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private current: number;
  attempts = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 800;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 1;
    this.current = this.initialMs;
  }

  /** The next delay (ms), growing each call. */
  next(): number {
    const base = this.current;
    this.current = Math.min(this.maxMs, this.current * this.factor);
    this.attempts++;
    return Math.min(this.maxMs, base * (1 + Math.random() * this.jitter));
  }

  reset(): void {
    this.current = this.initialMs;
    this.attempts = 0;
  }
}

/** RFC 3339 with whole seconds (`metav1.Time`): `2026-11-28T01:02:03Z`. */
export function formatTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z");
}

/** RFC 3339 with six fractional digits (`metav1.MicroTime`): `2026-11-28T01:02:03.123456Z`. */
export function formatMicroTime(d: Date = new Date()): string {
  const iso = d.toISOString(); // 2026-11-28T01:02:03.123Z
  return `${iso.slice(0, 23)}000Z`;
}

/** Parses a Kubernetes time (any fractional precision); NaN if invalid. */
export function parseTime(s: string | undefined): number {
  if (!s) return Number.NaN;
  return Date.parse(s);
}

/** A signal that aborts when any of the given ones does. */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length === 1 && present[0]) return present[0];
  const ac = new AbortController();
  for (const s of present) {
    if (s.aborted) {
      ac.abort(s.reason);
      return ac.signal;
    }
  }
  const onAbort = (ev: Event) => {
    const src = ev.target as AbortSignal;
    for (const s of present) s.removeEventListener("abort", onAbort);
    ac.abort(src.reason);
  };
  for (const s of present) s.addEventListener("abort", onAbort, { once: true });
  return ac.signal;
}
