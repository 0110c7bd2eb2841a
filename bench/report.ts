/** The rows every benchmark produces, and how they are printed as a table. */
import { round, type Stats } from "./lib.js";

/** One measured quantity: the median of its repetitions and how it compares with a reference row. */
export interface Row {
  /** "P1" … "P5". */
  id: string;
  name: string;
  unit: string;
  stats: Stats;
  /** The row this one is compared with (same id), and median / reference median. */
  vs?: string;
  ratio?: number;
  /** The goal as text ("≤ 1.05×") and whether the median met it. */
  goal?: string;
  met?: boolean;
  note?: string;
}

export function fmt(x: number, unit: string): string {
  if (!Number.isFinite(x)) return "–";
  if (unit === "s") return x < 10 ? x.toFixed(2) : x.toFixed(1);
  if (unit === "MiB/s" || unit === "MiB") return x.toFixed(1);
  return String(round(x, 2));
}

/** A Markdown table of the rows (what RESULTS.md shows). */
export function table(rows: Row[]): string {
  const lines = [
    "| P | measurement | median | min–max | n | vs | ratio | goal |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const range = r.stats.n > 1 ? `${fmt(r.stats.min, r.unit)}–${fmt(r.stats.max, r.unit)}` : "";
    const goal = r.goal ? `${r.goal} ${r.met ? "✅" : "❌"}` : "";
    const name = (r.note ? `${r.name} (${r.note.length > 120 ? `${r.note.slice(0, 117)}…` : r.note})` : r.name).replace(/\|/g, "\\|");
    lines.push(
      `| ${r.id} | ${name} | ${fmt(r.stats.median, r.unit)} ${r.unit} | ${range} | ${r.stats.n} | ${(r.vs ?? "").replace(/\|/g, "\\|")} | ${r.ratio !== undefined ? `${r.ratio.toFixed(2)}×` : ""} | ${goal} |`,
    );
  }
  return lines.join("\n");
}

/** Sets `ratio` = row median / reference median, and the goal's verdict when `goal` is given. */
export function compare(row: Row, reference: Row, goal?: { text: string; ok: (ratio: number) => boolean }): Row {
  const ratio = row.stats.median / reference.stats.median;
  return { ...row, vs: reference.name, ratio, ...(goal ? { goal: goal.text, met: goal.ok(ratio) } : {}) };
}
