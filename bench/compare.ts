/**
 * `npm run bench:compare -- <before.json> <after.json>`: two recorded runs (bench/results/*.json) side by
 * side, row by row — how a change (a dependency move, say) moved each figure. Rows are matched by suite,
 * measurement and reference; a row only one run has is listed with the other side empty.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { fmt, type Row } from "./report.js";

interface Recorded {
  startedAt: string;
  versions: Record<string, string | null | undefined>;
  rows: Row[];
}

const key = (r: Row): string => `${r.id}\u0000${r.name}\u0000${r.vs ?? ""}`;

/** The comparison as a Markdown table, with a line naming both runs and what differed in their versions. */
export function comparison(before: Recorded, after: Recorded, names: [string, string]): string {
  const changed = Object.keys({ ...before.versions, ...after.versions })
    .filter((k) => before.versions[k] !== after.versions[k])
    .map((k) => `${k} ${before.versions[k] ?? "–"} → ${after.versions[k] ?? "–"}`);
  const lines = [
    `Before: ${names[0]} (${before.startedAt}); after: ${names[1]} (${after.startedAt}). Changed: ${changed.join(", ") || "nothing recorded"}.`,
    "",
    "| P | measurement | before (median) | after (median) | after / before |",
    "|---|---|---|---|---|",
  ];
  const earlier = new Map(before.rows.map((r) => [key(r), r]));
  const seen = new Set<string>();
  const cell = (r: Row | undefined): string => (r ? `${fmt(r.stats.median, r.unit)} ${r.unit} (n ${r.stats.n})` : "");
  // The reference is named only where it tells two rows of the same measurement apart.
  const twice = new Set(after.rows.map((r) => r.name).filter((n, i, all) => all.indexOf(n) !== i));
  const name = (r: Row): string => (r.vs && twice.has(r.name) ? `${r.name} (vs ${r.vs})` : r.name).replace(/\|/g, "\\|");
  for (const r of after.rows) {
    const b = earlier.get(key(r));
    seen.add(key(r));
    const ratio = b && b.stats.median !== 0 ? `${(r.stats.median / b.stats.median).toFixed(2)}×` : "";
    lines.push(`| ${r.id} | ${name(r)} | ${cell(b)} | ${cell(r)} | ${ratio} |`);
  }
  for (const b of before.rows) if (!seen.has(key(b))) lines.push(`| ${b.id} | ${name(b)} | ${cell(b)} |  |  |`);
  return lines.join("\n");
}

function main(): void {
  const [beforePath, afterPath] = process.argv.slice(2);
  if (!beforePath || !afterPath) {
    process.stderr.write("usage: npm run bench:compare -- <before.json> <after.json>\n");
    process.exit(2);
  }
  const read = (path: string): Recorded => JSON.parse(readFileSync(path, "utf8")) as Recorded;
  process.stdout.write(`${comparison(read(beforePath), read(afterPath), [basename(beforePath), basename(afterPath)])}\n`);
}

main();
