// Measurements taken by tests (memory, sizes, times) go to bench/out/ for bench/RESULTS.md; tests never
// assert on timings (see bench/).
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const OUT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bench", "out");

/** Appends one JSON line `{name, at, ...values}` to bench/out/measurements.jsonl and prints it. */
export function recordMeasurement(name: string, values: Record<string, number | string>): void {
  mkdirSync(OUT, { recursive: true });
  const line = JSON.stringify({ name, at: new Date().toISOString(), ...values });
  appendFileSync(join(OUT, "measurements.jsonl"), `${line}\n`);
  process.stdout.write(`measurement ${line}\n`);
}
