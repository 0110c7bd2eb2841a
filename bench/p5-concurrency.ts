import type { Bench } from "./context.js";
import type { Row } from "./report.js";

export async function benchConcurrency(_b: Bench): Promise<Row[]> {
  return [];
}
