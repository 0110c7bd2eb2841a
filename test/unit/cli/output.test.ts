import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createOutput, formatBytes, formatContextProgress, type CliEvent } from "../../../src/cli/output.js";
import { BuildError, KubernetesApiError } from "../../../src/errors.js";

/** A writable that keeps what was written, synchronously; `isTTY` as a terminal would set it. */
class FakeStream extends Writable {
  readonly chunks: string[] = [];
  constructor(readonly isTTY = false) {
    super({
      decodeStrings: false,
      write: (chunk: string | Buffer, _encoding, callback) => {
        this.chunks.push(String(chunk));
        callback();
      },
    });
  }
  get text(): string {
    return this.chunks.join("");
  }
}

/** A clock the test moves by hand. */
function clock(start = 0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

function setup(options: { json?: boolean; quiet?: boolean; tty?: boolean; start?: number } = {}) {
  const stdout = new FakeStream(options.tty ?? false);
  const stderr = new FakeStream(options.tty ?? false);
  const time = clock(options.start ?? 0);
  const output = createOutput({ json: options.json ?? false, quiet: options.quiet ?? false }, { stdout, stderr }, time.now);
  return { stdout, stderr, output, ...time };
}

/** Every line of stdout parsed as JSON; fails when a line is not one JSON object. */
function events(stdout: FakeStream): CliEvent[] {
  expect(stdout.text === "" || stdout.text.endsWith("\n")).toBe(true);
  return stdout.text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const value = JSON.parse(line) as unknown;
      expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);
      return value as CliEvent;
    });
}

const MiB = 1024 * 1024;

describe("formatBytes", () => {
  it.each<[number, string]>([
    [0, "0 B"],
    [1, "1 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [10 * 1024 + 51, "10.0 KiB"],
    [MiB, "1.0 MiB"],
    [12.5 * MiB, "12.5 MiB"],
    [1024 * MiB, "1.0 GiB"],
    [3.25 * 1024 * MiB, "3.3 GiB"],
    [1024 ** 4, "1.0 TiB"],
    // TiB is the largest unit.
    [2048 * 1024 ** 4, "2048.0 TiB"],
  ])("%d → %s", (bytes, expected) => {
    expect(formatBytes(bytes)).toBe(expected);
  });
});

describe("formatContextProgress", () => {
  it.each<[{ tarBytes: number; totalTarBytes: number; gzipBytes: number }, number, string]>([
    [
      { tarBytes: 12 * MiB, totalTarBytes: 40 * MiB, gzipBytes: 3.1 * MiB },
      25 * MiB,
      "uploading context 12.0 MiB / 40.0 MiB (30%), 3.1 MiB sent, 25.0 MiB/s",
    ],
    [{ tarBytes: 0, totalTarBytes: 2048, gzipBytes: 0 }, 0, "uploading context 0 B / 2.0 KiB (0%), 0 B sent, 0 B/s"],
    // The percentage rounds down: 99.9% is not done.
    [{ tarBytes: 999, totalTarBytes: 1000, gzipBytes: 10 }, 5, "uploading context 999 B / 1000 B (99%), 10 B sent, 5 B/s"],
    [{ tarBytes: 1000, totalTarBytes: 1000, gzipBytes: 300 }, 300, "uploading context 1000 B / 1000 B (100%), 300 B sent, 300 B/s"],
    // An empty context (total 0) is 100%, not NaN.
    [{ tarBytes: 0, totalTarBytes: 0, gzipBytes: 0 }, 0, "uploading context 0 B / 0 B (100%), 0 B sent, 0 B/s"],
  ])("%j at %d B/s", (progress, rate, expected) => {
    expect(formatContextProgress(progress, rate)).toBe(expected);
  });
});

describe("createOutput: human", () => {
  it.each([false, true])("writes builder lines to stdout as they are (tty %s)", (tty) => {
    const { stdout, stderr, output } = setup({ tty });
    output.line("Step 1/3 : FROM alpine\n");
    output.line("partial");
    expect(stdout.text).toBe("Step 1/3 : FROM alpine\npartial");
    expect(stderr.text).toBe("");
    expect(output.json).toBe(false);
  });

  it("writes phases, results and errors to stderr", () => {
    const { stdout, stderr, output } = setup();
    output.phase("builder pod scheduled");
    output.result("built localhost:5001/x:latest in 3.2s", { image: "x" });
    output.error(new Error("boom"));
    output.error("not an Error");
    expect(stdout.text).toBe("");
    expect(stderr.text).toBe(
      "kce: builder pod scheduled\nbuilt localhost:5001/x:latest in 3.2s\nkce: error: boom\nkce: error: not an Error\n",
    );
  });

  it("--quiet drops progress and phases but keeps lines, results and errors", () => {
    const { stdout, stderr, output } = setup({ quiet: true });
    output.contextProgress({ tarBytes: 1, totalTarBytes: 1, gzipBytes: 1 });
    output.phase("scheduled");
    output.line("out\n");
    output.result("done", {});
    output.error(new Error("bad"));
    expect(stdout.text).toBe("out\n");
    expect(stderr.text).toBe("done\nkce: error: bad\n");
  });

  it("logs progress as whole lines at most every 2 s when stderr is not a terminal", () => {
    const { stderr, output, advance } = setup({ start: 1_700_000_000_000 });
    const progress = (tarBytes: number) => output.contextProgress({ tarBytes, totalTarBytes: 100 * MiB, gzipBytes: tarBytes / 2 });
    progress(0); // printed: the first update
    advance(1000);
    progress(10 * MiB); // dropped: 1 s later
    advance(999);
    progress(20 * MiB); // dropped: 1.999 s after the last printed one
    advance(1);
    progress(30 * MiB); // printed: 2 s
    advance(500);
    progress(100 * MiB); // printed: done always prints
    const lines = stderr.text.split("\n");
    expect(lines).toEqual([
      "uploading context 0 B / 100.0 MiB (0%), 0 B sent, 0 B/s",
      "uploading context 30.0 MiB / 100.0 MiB (30%), 15.0 MiB sent, 7.5 MiB/s",
      "uploading context 100.0 MiB / 100.0 MiB (100%), 50.0 MiB sent, 20.0 MiB/s",
      "",
    ]);
    expect(stderr.text).not.toContain("\r");
  });

  it("prints the first update even when the injected clock starts at 0", () => {
    const { stderr, output } = setup({ start: 0 });
    output.contextProgress({ tarBytes: 1, totalTarBytes: 10, gzipBytes: 1 });
    expect(stderr.text).toBe("uploading context 1 B / 10 B (10%), 1 B sent, 0 B/s\n");
  });

  it("redraws one line at most every 250 ms on a terminal and ends it when done", () => {
    const { stdout, stderr, output, advance } = setup({ tty: true });
    const progress = (tarBytes: number) => output.contextProgress({ tarBytes, totalTarBytes: 1000, gzipBytes: tarBytes });
    progress(100);
    advance(249);
    progress(200); // dropped
    advance(1);
    progress(300);
    advance(10);
    progress(1000); // done: printed at once, then the line is ended
    expect(stderr.chunks).toEqual([
      "\r\x1b[Kuploading context 100 B / 1000 B (10%), 100 B sent, 0 B/s",
      "\r\x1b[Kuploading context 300 B / 1000 B (30%), 300 B sent, 1.2 KiB/s",
      "\r\x1b[Kuploading context 1000 B / 1000 B (100%), 1000 B sent, 3.8 KiB/s",
      "\n",
    ]);
    expect(stdout.text).toBe("");
    output.close(); // nothing left open
    expect(stderr.chunks).toHaveLength(4);
  });

  it.each<[string, (o: ReturnType<typeof setup>["output"]) => void, string]>([
    ["a phase", (o) => o.phase("pushing"), "kce: pushing\n"],
    ["a result", (o) => o.result("ok", {}), "ok\n"],
    ["an error", (o) => o.error(new Error("x")), "kce: error: x\n"],
    ["close", (o) => o.close(), ""],
  ])("ends an open progress line on a terminal before %s", (_name, act, after) => {
    const { stderr, output } = setup({ tty: true });
    output.contextProgress({ tarBytes: 1, totalTarBytes: 2, gzipBytes: 1 });
    act(output);
    expect(stderr.text).toBe(`\r\x1b[Kuploading context 1 B / 2 B (50%), 1 B sent, 0 B/s\n${after}`);
    const before = stderr.text;
    output.close(); // the line was already ended: nothing more
    expect(stderr.text).toBe(before);
  });

  it("ends an open progress line on stderr before a builder line on stdout", () => {
    const { stdout, stderr, output } = setup({ tty: true });
    output.contextProgress({ tarBytes: 1, totalTarBytes: 2, gzipBytes: 1 });
    output.line("STEP 1\n");
    expect(stderr.text.endsWith("\n")).toBe(true);
    expect(stdout.text).toBe("STEP 1\n");
  });
});

describe("createOutput: --json", () => {
  it("writes one parseable JSON object per line on stdout and nothing on stderr", () => {
    const { stdout, stderr, output, advance } = setup({ json: true, tty: true, start: 5000 });
    output.line("Step 1/2 : FROM alpine\n");
    output.line('with "quotes", \\ backslash and\ttab\n');
    output.line("no newline");
    output.line("two\nlines\n");
    output.phase("builder pod scheduled");
    advance(2000); // waiting for the builder pod does not count towards the upload rate
    output.contextProgress({ tarBytes: 0, totalTarBytes: 8192, gzipBytes: 0 });
    advance(2000);
    output.contextProgress({ tarBytes: 4096, totalTarBytes: 8192, gzipBytes: 1000 });
    output.result("human summary is not printed", { image: "localhost:5001/x:latest", digest: null, pushed: true, seconds: 2 });
    output.error(new BuildError("the build failed", { reason: "failed", exitCode: 2 }));
    output.close();
    expect(stderr.text).toBe("");
    expect(output.json).toBe(true);
    expect(events(stdout)).toEqual([
      { event: "log", line: "Step 1/2 : FROM alpine" },
      { event: "log", line: 'with "quotes", \\ backslash and\ttab' },
      { event: "log", line: "no newline" },
      // Only the trailing newline is dropped; an embedded one stays escaped inside the one line.
      { event: "log", line: "two\nlines" },
      { event: "phase", message: "builder pod scheduled" },
      { event: "progress", phase: "context", tarBytes: 0, totalTarBytes: 8192, gzipBytes: 0, bytesPerSecond: 0 },
      { event: "progress", phase: "context", tarBytes: 4096, totalTarBytes: 8192, gzipBytes: 1000, bytesPerSecond: 500 },
      { event: "result", image: "localhost:5001/x:latest", digest: null, pushed: true, seconds: 2 },
      { event: "error", type: "BuildError", message: "the build failed", reason: "failed", exitCode: 2 },
    ]);
    expect(stdout.text.split("\n")).toHaveLength(10);
  });

  it.each<[string, unknown, object]>([
    ["a plain Error", new Error("boom"), { event: "error", type: "Error", message: "boom" }],
    ["a string", "boom", { event: "error", type: "Error", message: "boom" }],
    ["a BuildError without exit code", new BuildError("b", { reason: "deadline" }), { event: "error", type: "BuildError", message: "b", reason: "deadline" }],
    [
      "a KubernetesApiError",
      new KubernetesApiError("forbidden", { verb: "create", resource: "jobs", statusCode: 403, reason: "Forbidden" }),
      { event: "error", type: "KubernetesApiError", message: "forbidden", reason: "Forbidden" },
    ],
    [
      "a KubernetesApiError without a reason",
      new KubernetesApiError("unreachable", { verb: "list", resource: "pods", statusCode: null }),
      { event: "error", type: "KubernetesApiError", message: "unreachable" },
    ],
  ])("reports %s as an error event", (_name, error, expected) => {
    const { stdout, output } = setup({ json: true });
    output.error(error);
    expect(events(stdout)).toEqual([expected]);
  });

  it("rate-limits progress events to one every 2 s, even on a terminal, and always sends the last", () => {
    const { stdout, output, advance } = setup({ json: true, tty: true, start: 0 });
    for (let i = 0; i <= 10; i++) {
      output.contextProgress({ tarBytes: i * 100, totalTarBytes: 1000, gzipBytes: i * 10 });
      advance(500);
    }
    const progress = events(stdout).filter((e) => e.event === "progress");
    expect(progress.map((e) => (e as { tarBytes: number }).tarBytes)).toEqual([0, 400, 800, 1000]);
    expect(progress.at(-1)).toMatchObject({ tarBytes: 1000, gzipBytes: 100, bytesPerSecond: 20 });
  });

  it("--quiet drops progress and phase events only", () => {
    const { stdout, output } = setup({ json: true, quiet: true });
    output.contextProgress({ tarBytes: 1, totalTarBytes: 1, gzipBytes: 1 });
    output.phase("scheduled");
    output.line("out\n");
    output.result("", { exitCode: 0 });
    expect(events(stdout)).toEqual([
      { event: "log", line: "out" },
      { event: "result", exitCode: 0 },
    ]);
  });
});
