/** Loads the recorded Kubernetes objects in test/fixtures (see its README) as client-node types. */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Job, V1Pod } from "@kubernetes/client-node";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "fixtures");

/** Timestamps stay RFC 3339 strings, as a raw watch delivers them; the code under test accepts both. */
export function loadPod(name: string): V1Pod {
  return JSON.parse(readFileSync(join(root, "pods", `${name}.json`), "utf8")) as V1Pod;
}

export function loadJob(name: string): V1Job {
  return JSON.parse(readFileSync(join(root, "jobs", `${name}.json`), "utf8")) as V1Job;
}

export function fixtureNames(kind: "pods" | "jobs"): string[] {
  return readdirSync(join(root, kind))
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -".json".length))
    .sort();
}
