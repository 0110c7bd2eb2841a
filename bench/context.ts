/** What every benchmark gets: the cluster's settings, a namespace of its own, and the run's options. */
import type { ClusterEnv } from "./lib.js";

export interface BenchOptions {
  quick: boolean;
  /** Repetitions of each measurement. */
  reps: number;
  /** Which of P1…P7 to run. */
  only: Set<string>;
  /** Keep the raw results in bench/results/ and quote the table in bench/RESULTS.md. */
  record: boolean;
}

export interface Bench {
  options: BenchOptions;
  env: ClusterEnv;
  namespace: string;
  /** The registry as nodes pull from it and as pods push to it. */
  registry: string;
  pushRegistry: string;
  baseImage: string;
  kanikoImage: string;
  /** `node <cli>` runs the `kce` CLI compiled by this run. */
  cli: string;
  log: (message: string) => void;
  /** Extra facts for results.json (versions, sizes, counts). */
  facts: Record<string, unknown>;
}
