/**
 * What `kce` prints: human lines (builder output on stdout, progress and results on stderr) or, with
 * `--json`, one JSON object per line on stdout.
 */

/** One machine-readable event of `--json` output. */
export type CliEvent =
  | { event: "log"; line: string }
  | { event: "progress"; phase: "context"; tarBytes: number; totalTarBytes: number; gzipBytes: number; bytesPerSecond: number }
  | { event: "phase"; message: string }
  | { event: "result"; [key: string]: unknown }
  | { event: "error"; type: string; message: string; reason?: string; exitCode?: number | null };

export interface Output {
  readonly json: boolean;
  /** A line of builder or container output (ends with "\n"). */
  line(text: string): void;
  /** Upload progress (rate-limited for humans). */
  contextProgress(p: { tarBytes: number; totalTarBytes: number; gzipBytes: number }): void;
  phase(message: string): void;
  /** The final result: a human summary line, or the JSON object. */
  result(summary: string, data: Record<string, unknown>): void;
  error(error: unknown): void;
  /** Ends a progress line left open on a terminal. */
  close(): void;
}

/** Formats bytes as KiB/MiB/GiB with one decimal. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** "context 12.0 MiB / 40.0 MiB (30%), 3.1 MiB sent, 25.0 MiB/s" */
export function formatContextProgress(p: { tarBytes: number; totalTarBytes: number; gzipBytes: number }, bytesPerSecond: number): string {
  const percent = p.totalTarBytes > 0 ? Math.floor((p.tarBytes / p.totalTarBytes) * 100) : 100;
  return (
    `uploading context ${formatBytes(p.tarBytes)} / ${formatBytes(p.totalTarBytes)} (${percent}%), ` +
    `${formatBytes(p.gzipBytes)} sent, ${formatBytes(bytesPerSecond)}/s`
  );
}

interface Streams {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The output for a command; `now` is injectable for tests. */
export function createOutput(options: { json: boolean; quiet: boolean }, streams: Streams, now: () => number = Date.now): Output {
  // The rate is over the upload itself: from the first progress update, not from the command's start (which
  // includes waiting for the builder pod).
  let uploadStarted: number | null = null;
  // The first update always prints, whatever the clock's origin (an injected clock may start at 0).
  let lastProgress = Number.NEGATIVE_INFINITY;
  let progressOpen = false;
  const emit = (event: CliEvent): void => {
    streams.stdout.write(`${JSON.stringify(event)}\n`);
  };
  const endProgress = (): void => {
    if (progressOpen) streams.stderr.write("\n");
    progressOpen = false;
  };
  const rate = (bytes: number): number => {
    uploadStarted ??= now();
    const seconds = (now() - uploadStarted) / 1000;
    return seconds > 0 ? Math.round(bytes / seconds) : 0;
  };
  return {
    json: options.json,
    line(text) {
      if (options.json) emit({ event: "log", line: text.replace(/\n$/, "") });
      else {
        endProgress();
        streams.stdout.write(text);
      }
    },
    contextProgress(p) {
      const done = p.tarBytes >= p.totalTarBytes;
      uploadStarted ??= now();
      // A terminal redraws one line often; a log file gets a line every few seconds.
      const interval = streams.stderr.isTTY && !options.json ? 250 : 2000;
      if (options.quiet || (!done && now() - lastProgress < interval)) return;
      lastProgress = now();
      const bytesPerSecond = rate(p.gzipBytes);
      if (options.json) emit({ event: "progress", phase: "context", ...p, bytesPerSecond });
      else if (streams.stderr.isTTY) {
        streams.stderr.write(`\r\x1b[K${formatContextProgress(p, bytesPerSecond)}`);
        progressOpen = true;
        if (done) endProgress();
      } else {
        streams.stderr.write(`${formatContextProgress(p, bytesPerSecond)}\n`);
      }
    },
    phase(message) {
      if (options.quiet) return;
      if (options.json) emit({ event: "phase", message });
      else {
        endProgress();
        streams.stderr.write(`kce: ${message}\n`);
      }
    },
    result(summary, data) {
      if (options.json) emit({ event: "result", ...data });
      else {
        endProgress();
        streams.stderr.write(`${summary}\n`);
      }
    },
    error(error) {
      const err = error instanceof Error ? error : new Error(String(error));
      const extra = err as Error & { reason?: unknown; exitCode?: unknown };
      if (options.json) {
        emit({
          event: "error",
          type: err.name,
          message: err.message,
          ...(typeof extra.reason === "string" ? { reason: extra.reason } : {}),
          ...(typeof extra.exitCode === "number" ? { exitCode: extra.exitCode } : {}),
        });
      } else {
        endProgress();
        streams.stderr.write(`kce: error: ${err.message}\n`);
      }
    },
    close: endProgress,
  };
}
