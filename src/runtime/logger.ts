// Structured logging: one JSON object per line (`json`) or a readable line for terminals (`text`).

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "json" | "text";
export type LogFields = Record<string, unknown>;

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(s: string): s is LogLevel {
  return s === "debug" || s === "info" || s === "warn" || s === "error";
}

export function isLogFormat(s: string): s is LogFormat {
  return s === "json" || s === "text";
}

export interface LoggerOptions {
  /** Minimum level written (default `info`). */
  level?: LogLevel;
  /** `json` (default) or `text`. */
  format?: LogFormat;
  /** Logger name; child names are joined with dots. */
  name?: string;
  /** Fields added to every line. */
  fields?: LogFields;
  /** Where lines go (each line ends with a newline). Default: process.stderr. */
  sink?: (line: string) => void;
  /** Clock, for tests. */
  now?: () => Date;
  /** Colour the level in `text` format (default: when the sink is a TTY stderr). */
  color?: boolean;
}

interface LoggerCore {
  level: number;
  format: LogFormat;
  sink: (line: string) => void;
  now: () => Date;
  color: boolean;
}

/** Turns values that JSON cannot show well (errors, bigints, maps) into plain data. */
export function toLoggable(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const out: LogFields = { name: value.name, message: value.message };
    for (const k of ["status", "reason", "code"]) {
      const v = (value as unknown as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = v;
    }
    if (value.cause !== undefined && depth < 3) out.cause = toLoggable(value.cause, depth + 1);
    return out;
  }
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return toLoggable(Object.fromEntries(value), depth);
  if (value instanceof Set) return toLoggable([...value], depth);
  if (typeof value === "function" || typeof value === "symbol") return String(value);
  if (depth > 6) return "[...]";
  if (Array.isArray(value)) return value.map((v) => toLoggable(v, depth + 1));
  if (value !== null && typeof value === "object") {
    const out: LogFields = {};
    for (const [k, v] of Object.entries(value)) out[k] = toLoggable(v, depth + 1);
    return out;
  }
  return value;
}

function textValue(v: unknown): string {
  const loggable = toLoggable(v);
  if (typeof loggable === "string") {
    return /^[^\s"=]+$/.test(loggable) ? loggable : JSON.stringify(loggable);
  }
  return JSON.stringify(loggable) ?? "undefined";
}

const COLORS: Record<LogLevel, string> = {
  debug: "\x1b[90m",
  info: "\x1b[32m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
};

export class Logger {
  readonly name: string;
  private readonly fields: LogFields;
  private readonly core: LoggerCore;

  constructor(options: LoggerOptions = {}) {
    this.name = options.name ?? "";
    this.fields = { ...(options.fields ?? {}) };
    const sink = options.sink ?? ((line: string) => process.stderr.write(line));
    this.core = {
      level: LEVEL_ORDER[options.level ?? "info"],
      format: options.format ?? "json",
      sink,
      now: options.now ?? (() => new Date()),
      color: options.color ?? (options.sink === undefined && process.stderr.isTTY === true),
    };
  }

  private static derive(parent: Logger, name: string, fields: LogFields): Logger {
    const child = Object.create(Logger.prototype) as Logger;
    Object.assign(child, { name, fields, core: parent.core });
    return child;
  }

  /** A child logger with a longer name (`parent.child`). */
  withName(name: string): Logger {
    return Logger.derive(this, this.name ? `${this.name}.${name}` : name, this.fields);
  }

  /** A child logger that adds fields to every line. */
  withValues(fields: LogFields): Logger {
    return Logger.derive(this, this.name, { ...this.fields, ...fields });
  }

  /** `child("name")`, `child({ field })` or `child("name", { field })`. */
  child(nameOrFields: string | LogFields, fields?: LogFields): Logger {
    if (typeof nameOrFields === "string") {
      const named = this.withName(nameOrFields);
      return fields ? named.withValues(fields) : named;
    }
    return this.withValues(nameOrFields);
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_ORDER[level] >= this.core.level;
  }

  setLevel(level: LogLevel): void {
    this.core.level = LEVEL_ORDER[level];
  }

  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LEVEL_ORDER[level] < this.core.level) return;
    try {
      this.core.sink(this.format(level, msg, fields));
    } catch {
      // A logger must never throw into its caller.
    }
  }

  private format(level: LogLevel, msg: string, fields?: LogFields): string {
    const ts = this.core.now().toISOString();
    const all: LogFields = { ...this.fields, ...(fields ?? {}) };
    if (this.core.format === "json") {
      const record: LogFields = { ts, level };
      if (this.name) record.logger = this.name;
      record.msg = msg;
      for (const [k, v] of Object.entries(all)) {
        if (k === "ts" || k === "level" || k === "logger" || k === "msg")
          record[`field.${k}`] = toLoggable(v);
        else record[k] = toLoggable(v);
      }
      return `${JSON.stringify(record)}\n`;
    }
    const lvl = level.toUpperCase().padEnd(5);
    const coloured = this.core.color ? `${COLORS[level]}${lvl}\x1b[0m` : lvl;
    let line = `${ts} ${coloured}`;
    if (this.name) line += ` ${this.name}`;
    line += ` ${msg}`;
    for (const [k, v] of Object.entries(all)) {
      if (v === undefined) continue;
      line += ` ${k}=${textValue(v)}`;
    }
    return `${line}\n`;
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return new Logger(options);
}

/** A logger that writes nothing (for tests and libraries used without logging). */
export function discardLogger(): Logger {
  return new Logger({ level: "error", sink: () => {} });
}
