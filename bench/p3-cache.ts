import type { Bench } from "./context.js";
import type { Row } from "./report.js";

export async function benchCache(_b: Bench): Promise<Row[]> {
  return [];
}
