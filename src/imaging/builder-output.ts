/**
 * Reading what a builder left behind: the digest from its termination message, and the lines that explain a
 * failure (for `BuildError`). Pure string functions, shared by Kaniko and BuildKit.
 */

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * The image digest the builder wrote to its termination log ("sha256:<64 hex>"), or null when the message is
 * empty or anything else (e.g. a log tail the kubelet kept after a failure).
 */
export function parseBuilderDigest(terminationMessage: string | null | undefined): string | null {
  const text = (terminationMessage ?? "").trim();
  return DIGEST.test(text) ? text : null;
}

/** What a failed build said, for `BuildError`. */
export interface BuilderFailure {
  /** One line for the error message: the builder's final error. */
  summary: string;
  /** The error lines found (cleaned of step prefixes), oldest first. */
  errorLines: string[];
  /** The last output lines, without trailing newlines. */
  logTail: string[];
  /** The failing command's exit code when the output names one, else the builder container's. */
  exitCode: number | null;
}

// Kaniko: cobra's "Error: error building image: …", its bare top-level "error checking push permissions -- …",
// logrus "level=error msg=…" / "ERRO[0001] …".
// BuildKit: "#7 ERROR: …", "ERROR: …", "error: failed to solve: …".
const ERROR_LINE =
  /^(?:#\d+ )?ERROR:|^error:|^error [a-z]+ing\b|^Error:|error building image:|failed to solve:|(?:^|\s)level=(?:error|fatal)\b|^(?:ERRO|FATA)\[/;
const COMMAND_EXIT = /(?:exit code: |exit status )(\d+)\b/;
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

function clean(line: string): string {
  let text = line.replace(ANSI, "").replace(/\r$/, "").trimEnd();
  text = text.replace(/^#\d+ (?=ERROR:)/, "");
  const logrus = /(?:^|\s)level=(?:error|fatal) msg="((?:[^"\\]|\\.)*)"/.exec(text);
  if (logrus?.[1] !== undefined) text = logrus[1].replace(/\\(.)/g, "$1");
  return text.replace(/^(?:ERRO|FATA)\[\d+\] /, "").replace(/^Error: /, "");
}

/**
 * Summarizes a failed build from its output (a string or lines) and its container's exit code. Looks for the
 * builders' error lines; without any, the last non-empty line is the summary.
 */
export function summarizeBuilderFailure(
  output: string | readonly string[],
  containerExitCode: number | null = null,
  tailLines = 20,
): BuilderFailure {
  const lines = (typeof output === "string" ? output.split("\n") : output.flatMap((l) => l.split("\n")))
    .map((l) => l.replace(ANSI, "").replace(/\r$/, "").trimEnd())
    .filter((l) => l !== "");
  const logTail = lines.slice(-tailLines);
  const errorLines: string[] = [];
  for (const line of lines) {
    if (!ERROR_LINE.test(line)) continue;
    const text = clean(line);
    if (errorLines[errorLines.length - 1] !== text) errorLines.push(text);
  }
  const summary = errorLines[errorLines.length - 1] ?? lines[lines.length - 1] ?? "the builder failed without output";
  let exitCode = containerExitCode;
  for (const line of [...errorLines].reverse()) {
    const m = COMMAND_EXIT.exec(line);
    if (m?.[1] !== undefined) {
      exitCode = Number(m[1]);
      break;
    }
  }
  return { summary, errorLines: errorLines.slice(-5), logTail, exitCode };
}
