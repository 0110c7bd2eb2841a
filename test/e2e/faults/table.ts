// Prints the README's reliability table (fault → what the engine does → test) from the fault tests
// themselves: each test in test/e2e/faults/*.test.ts is preceded by an annotation line
//   // row <n> | <fault or bad input> | <what the engine does>
// (several may precede one test) and the test's name is read from the `it(…)` that follows. A template literal's
// `${…}` parts are filled in as vitest would name the tests: `${c.name}` inside `for (const c of CASES)` gives one
// row per case (CASES an array literal with one `{ name: "…", … }` per line), `${A + B}` adds numeric constants
// (`const A = 15;`); anything else is an error, so that no row shows source text instead of a test name.
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
    let tests: string[] = [];
    // Several annotations may share the test that follows them.
    for (let j = i + 1; j < lines.length && j <= i + 8; j++) {
      const found = TEST.exec(lines[j] ?? "");
      if (found) {
        const raw = found[2] ?? "";
        tests = found[1] === "`" ? expandTemplate(raw, lines, i, `${file}:${j + 1}`) : [raw];
        break;
      }
    }
    if (tests.length === 0) throw new Error(`${file}:${i + 1}: annotation without an it(…) right after it`);
    for (const name of tests) {
      const test = name.replace(/\\(.)/g, "$1");
      rows.push({ row: Number(annotation[1]), fault: (annotation[2] ?? "").trim(), does: (annotation[3] ?? "").trim(), file, test });
    }
  }
  return rows;
}

/** A `${…}` part of a test name that is not escaped. */
const PLACEHOLDER = /(?<!\\)\$\{([^}]*)\}/g;

/**
 * The names vitest gives the test(s) whose name is the template literal `raw`; `before` is the line of its
 * annotation (the loop it runs in starts above it). One name, or one per case of a `for (const c of CASES)`.
 */
function expandTemplate(raw: string, lines: readonly string[], before: number, where: string): string[] {
  const expressions = [...new Set(Array.from(raw.matchAll(PLACEHOLDER), (m) => m[1] ?? ""))];
  // One map expression → text per test: a loop variable's fields differ per case, constants do not.
  let tests: Map<string, string>[] = [new Map()];
  for (const expression of expressions) {
    const field = /^\s*(\w+)\.(\w+)\s*$/.exec(expression);
    if (!field) {
      const value = String(constantSum(expression, lines, where));
      for (const test of tests) test.set(expression, value);
      continue;
    }
    const values = loopCaseValues(lines, before, field[1] ?? "", field[2] ?? "", where);
    if (tests.length === 1) tests = values.map(() => new Map(tests[0]));
    if (tests.length !== values.length) throw new Error(`${where}: the loop fields in the name do not come from one loop`);
    values.forEach((value, k) => tests[k]?.set(expression, value));
  }
  return tests.map((test) => raw.replace(PLACEHOLDER, (_, expression: string) => test.get(expression) ?? ""));
}

/** The `field` of each case of the loop `for (const variable of CASES)` nearest above line `before`. */
function loopCaseValues(lines: readonly string[], before: number, variable: string, field: string, where: string): string[] {
  const loop = new RegExp(`^\\s*for \\(const ${variable} of (\\w+)\\)`);
  let cases = "";
  for (let k = before; k >= 0 && cases === ""; k--) cases = loop.exec(lines[k] ?? "")?.[1] ?? "";
  if (cases === "") throw new Error(`${where}: \${${variable}.${field}} outside a for (const ${variable} of …) loop`);
  const start = lines.findIndex((line) => new RegExp(`^(?:export\\s+)?const ${cases}\\b.*=\\s*\\[\\s*$`).test(line));
  if (start < 0) throw new Error(`${where}: no array literal \`const ${cases} … = [\` in this file`);
  const value = new RegExp(`\\b${field}:\\s*(["'])((?:\\\\.|(?!\\1).)*)\\1`);
  const values: string[] = [];
  for (let k = start + 1; k < lines.length && !/^\s*\];?\s*$/.test(lines[k] ?? ""); k++) {
    const line = lines[k] ?? "";
    if (!/^\s*\{/.test(line)) continue;
    const found = value.exec(line);
    if (!found) throw new Error(`${where}: a case of ${cases} (line ${k + 1}) has no ${field}: "…" on its first line`);
    values.push(found[2] ?? "");
  }
  if (values.length === 0) throw new Error(`${where}: ${cases} has no cases`);
  return values;
}

/** The value of `expression`, a sum or difference of integers and `const NAME = <integer>;` of this file. */
function constantSum(expression: string, lines: readonly string[], where: string): number {
  const terms = expression.split(/([+-])/).map((t) => t.trim());
  let sum = 0;
  let sign = 1;
  for (const term of terms) {
    if (term === "+" || term === "-") {
      sign = term === "+" ? 1 : -1;
      continue;
    }
    const value = /^\d+$/.test(term) ? Number(term) : /^\w+$/.test(term) ? constantValue(term, lines) : null;
    if (value === null) throw new Error(`${where}: cannot work out \${${expression}} (only integers and integer constants added up)`);
    sum += sign * value;
  }
  return sum;
}

/** The integer `const name = <integer>;` declares in the file, or null. */
function constantValue(name: string, lines: readonly string[]): number | null {
  const declaration = new RegExp(`^(?:export\\s+)?const ${name}\\s*=\\s*(\\d+)\\s*;`);
  for (const line of lines) {
    const found = declaration.exec(line);
    if (found) return Number(found[1]);
  }
  return null;
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
