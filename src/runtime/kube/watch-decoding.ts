// Watch streams are newline-delimited JSON: a line splitter that copes with chunk boundaries and
// multi-byte characters, the parser of one watch event, and the reader of a whole stream.

import type { Readable } from "node:stream";
import { RequestTimeoutError } from "./errors.ts";
import { isRecord, type Status, type WatchEvent } from "./meta.ts";

/** Splits a byte stream into lines at `\n`, across chunk boundaries and inside multi-byte characters. */
export class LineDecoder {
  private parts: Buffer[] = [];

  /** Complete non-empty lines contained so far. */
  push(chunk: Buffer | string): string[] {
    const buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      const piece = buf.subarray(start, nl);
      let line: string;
      if (this.parts.length > 0) {
        this.parts.push(piece);
        line = Buffer.concat(this.parts).toString("utf8");
        this.parts = [];
      } else {
        line = piece.toString("utf8");
      }
      if (line.trim() !== "") lines.push(line);
      start = nl + 1;
    }
    if (start < buf.length) this.parts.push(buf.subarray(start));
    return lines;
  }

  /** The unterminated rest, if any. */
  end(): string[] {
    if (this.parts.length === 0) return [];
    const line = Buffer.concat(this.parts).toString("utf8");
    this.parts = [];
    return line.trim() === "" ? [] : [line];
  }
}

/** Parses one watch line into an event; throws on malformed input. */
export function parseWatchEvent<T>(line: string): WatchEvent<T> {
  const parsed: unknown = JSON.parse(line);
  if (!isRecord(parsed) || typeof parsed.type !== "string" || !isRecord(parsed.object)) {
    throw new Error(`malformed watch event: ${line.slice(0, 200)}`);
  }
  const type = parsed.type;
  if (type === "ERROR") return { type, object: parsed.object as unknown as Status };
  if (type === "ADDED" || type === "MODIFIED" || type === "DELETED" || type === "BOOKMARK") {
    return { type, object: parsed.object as unknown as T };
  }
  throw new Error(`unknown watch event type ${type}`);
}

/**
 * The events of a watch stream until it ends (end of the iteration), `signal` aborts (end), no bytes
 * arrive for `idleMs` (RequestTimeoutError) or it fails (thrown). The stream is destroyed at the end.
 */
export async function* readWatchStream<T>(
  stream: Readable,
  options: { what: string; idleMs: number; signal?: AbortSignal | undefined },
): AsyncGenerator<WatchEvent<T>, void, undefined> {
  const { what, idleMs, signal } = options;
  const idle = setTimeout(() => {
    stream.destroy(new RequestTimeoutError(`${what}: no data for ${idleMs} ms`, idleMs));
  }, idleMs);
  // Streams made up by hooks have no socket tied to the signal: end them on abort here too.
  const onAbort = () => stream.destroy();
  signal?.addEventListener("abort", onAbort, { once: true });
  const decoder = new LineDecoder();
  try {
    for await (const chunk of stream) {
      idle.refresh();
      for (const line of decoder.push(chunk as Buffer)) yield parseWatchEvent<T>(line);
    }
    for (const line of decoder.end()) yield parseWatchEvent<T>(line);
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  } finally {
    clearTimeout(idle);
    signal?.removeEventListener("abort", onAbort);
    stream.destroy();
  }
}
