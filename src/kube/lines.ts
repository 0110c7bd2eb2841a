/**
 * Pure helpers of the log follower: splitting a byte stream into lines across chunk boundaries, parsing the
 * kubelet's `timestamps=true` prefix, ordering RFC3339Nano timestamps, and dropping the lines a resumed
 * follow (`sinceTime`) repeats.
 */

/** One log line as the kubelet gives it with `timestamps=true`. */
export interface LogLine {
  /** RFC3339Nano timestamp exactly as the kubelet wrote it, e.g. `2025-01-02T03:04:05.123456789Z`. */
  timestamp: string;
  /** The line's text without its line terminator. */
  text: string;
}

/** Splits chunks into complete lines ("\n"-terminated, "\r\n" tolerated); keeps the partial tail. */
export class LineSplitter {
  private tail: Buffer = Buffer.alloc(0);

  /** Adds a chunk; returns the lines it completed (without terminators). */
  push(chunk: Buffer): string[] {
    const data = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      const end = nl > start && data[nl - 1] === 13 ? nl - 1 : nl;
      lines.push(data.toString("utf8", start, end));
      start = nl + 1;
    }
    this.tail = Buffer.from(data.subarray(start));
    return lines;
  }

  /** The incomplete last line, if any (and forgets it). */
  flush(): string | null {
    if (this.tail.length === 0) return null;
    const rest = this.tail.toString("utf8");
    this.tail = Buffer.alloc(0);
    return rest;
  }

  /** Bytes held for an incomplete line. */
  get pending(): number {
    return this.tail.length;
  }
}

/** Parses `"<timestamp> <text>"`; null when the line has no timestamp prefix. */
export function parseLogLine(line: string): LogLine | null {
  const space = line.indexOf(" ");
  const ts = space === -1 ? line : line.slice(0, space);
  if (parseTimestamp(ts) === null) return null;
  return { timestamp: ts, text: space === -1 ? "" : line.slice(space + 1) };
}

/** Nanoseconds since the epoch of an RFC3339(Nano) timestamp, or null when it is not one. */
export function parseTimestamp(ts: string): bigint | null {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(ts);
  if (m === null || m[1] === undefined || m[3] === undefined) return null;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return null;
  const frac = BigInt((m[2] ?? "").padEnd(9, "0"));
  return BigInt(ms) * 1_000_000n + frac;
}

/** Orders two RFC3339Nano timestamps (the kubelet trims trailing zeros, so string order is wrong). */
export function compareTimestamps(a: string, b: string): number {
  const x = parseTimestamp(a);
  const y = parseTimestamp(b);
  if (x === null || y === null) return a < b ? -1 : a > b ? 1 : 0;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Remembers what was yielded so a resumed read (from `sinceTime`, which the API server truncates to whole
 * seconds) can drop what the caller already has. While resuming, a line older than the newest one yielded is
 * a repeat, and at that newest timestamp as many copies of each text as were yielded are repeats; the first
 * newer line ends the resume. Outside a resume every line is accepted (stdout and stderr may interleave
 * slightly out of timestamp order).
 */
export class BoundaryDeduper {
  private lastTs: string | null = null;
  private atLast = new Map<string, number>();
  private skip: Map<string, number> | null = null;

  /** The newest timestamp accepted; the `sinceTime` to resume from. */
  get lastTimestamp(): string | null {
    return this.lastTs;
  }

  /** Call when a new read (resume from {@link lastTimestamp}) starts: boundary lines may now repeat. */
  beginResume(): void {
    this.skip = new Map(this.atLast);
  }

  /** True when the line is new and must be yielded; records it. */
  accept(line: LogLine): boolean {
    const order = this.lastTs === null ? 1 : compareTimestamps(line.timestamp, this.lastTs);
    if (this.skip !== null) {
      if (order < 0) return false;
      if (order === 0) {
        const left = this.skip.get(line.text) ?? 0;
        if (left > 0) {
          this.skip.set(line.text, left - 1);
          return false;
        }
      } else {
        this.skip = null;
      }
    }
    if (order > 0) {
      this.lastTs = line.timestamp;
      this.atLast = new Map([[line.text, 1]]);
    } else if (order === 0) {
      this.atLast.set(line.text, (this.atLast.get(line.text) ?? 0) + 1);
    }
    return true;
  }
}
