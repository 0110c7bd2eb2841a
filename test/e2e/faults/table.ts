// Prints the README's reliability table (fault → what the engine does → test) from the fault tests
// themselves: each test in test/e2e/faults/*.test.ts is preceded by an annotation line
//   // row <n> | <fault or bad input> | <what the engine does>
// (several may precede one test) and the test's name is read from the `it(…)` that follows (a template literal's `${…}` parts are kept as is).
// Usage (Node 20 cannot run TypeScript itself; the file needs nothing but node:fs/path/url):
//   npx tsc --outDir /tmp/kce-faults-table --module nodenext --target es2022 --types node test/e2e/faults/table.ts \
//     && node /tmp/kce-faults-table/table.js test/e2e/faults
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One annotated test. */
export interface FaultRow {
  row: number;
  fault: string;
  does: string;
  file: string;
  test: string;
}

const ANNOTATION = /^\s*\/\/ row (\d+) \| (.+?) \| (.+)$/;
const TEST = /^\s*it(?:\.each\([^)]*\))?\(\s*(["'`])((?:\\.|(?!\1).)*)\1/;

/** The annotated tests of one file's source, in file order. */
export function parseFaultTests(source: string, file: string): FaultRow[] {
  const rows: FaultRow[] = [];
  const lines = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const annotation = ANNOTATION.exec(lines[i] ?? "");
    if (!annotation) continue;
    let test = "";
    // Several annotations may share the test that follows them.
    for (let j = i + 1; j < lines.length && j <= i + 8; j++) {
      const found = TEST.exec(lines[j] ?? "");
      if (found) {
        test = (found[2] ?? "").replace(/\\(.)/g, "$1");
        break;
      }
    }
    if (test === "") throw new Error(`${file}:${i + 1}: annotation without an it(…) right after it`);
    rows.push({ row: Number(annotation[1]), fault: (annotation[2] ?? "").trim(), does: (annotation[3] ?? "").trim(), file, test });
  }
  return rows;
}

/** Every annotated test under `dir`, ordered by row, then file, then position. */
export function collectFaultRows(dir: string): FaultRow[] {
  const files = readdirSync(dir).filter((f) => f.endsWith(".test.ts")).sort();
  const rows = files.flatMap((f) => parseFaultTests(readFileSync(join(dir, f), "utf8"), f));
  return rows
    .map((r, index) => ({ r, index }))
    .sort((a, b) => a.r.row - b.r.row || a.index - b.index)
    .map(({ r }) => r);
}

const cell = (text: string): string => text.replace(/\|/g, "\\|");

/** The markdown table. */
export function renderTable(rows: readonly FaultRow[]): string {
  const out = ["| # | fault | what the engine does | test |", "|---|---|---|---|"];
  for (const r of rows) {
    out.push(`| ${r.row} | ${cell(r.fault)} | ${cell(r.does)} | \`${basename(r.file, ".test.ts")}\` › ${cell(r.test)} |`);
  }
  return out.join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2] ?? dirname(fileURLToPath(import.meta.url));
  const rows = collectFaultRows(dir);
  const covered = new Set(rows.map((r) => r.row));
  const missing = Array.from({ length: 15 }, (_, i) => i + 1).filter((n) => !covered.has(n));
  process.stdout.write(`${renderTable(rows)}\n`);
  if (missing.length > 0) process.stdout.write(`\nRows without a test yet: ${missing.join(", ")}.\n`);
}
