// Measurements taken by tests (memory, sizes, times) go to bench/out/ for bench/RESULTS.md. Speed is measured in
// bench/, never asserted in tests; the one timing assertion tests make is a generous "does not hang" bound
// (withinBound), with slack for a loaded 2-core machine.
import { appendFileSync, mkdirSync } from "node:fs";
import { expect } from "vitest";
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

/**
 * Slack on the promised bounds ("within ~5 s"): these assertions prove the engine does not hang or wait for a
 * server-side timeout; a loaded 2-core CI machine must not turn a 5.3 s answer into a red build. The measured
 * time and the promise are recorded either way. KCE_E2E_TIME_SLACK=1 is strict.
 */
const TIME_SLACK = Number(process.env.KCE_E2E_TIME_SLACK ?? "2");

/** Asserts `ms` ≤ `boundMs` × slack and records the measurement as `<name>`. */
export function withinBound(name: string, ms: number, boundMs: number, extra: Record<string, number | string> = {}): void {
  recordMeasurement(name, { ms, boundMs, ...extra });
  const allowed = boundMs * TIME_SLACK;
  expect(ms, `${name}: took ${ms} ms, promised ~${boundMs} ms (allowed ${allowed} ms)`).toBeLessThanOrEqual(allowed);
}
