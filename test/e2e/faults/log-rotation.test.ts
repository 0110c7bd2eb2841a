// Row 14 of the reliability matrix: the kubelet rotates a container's log (containerLogMaxSize, 10 MiB by
// default; test/cluster keeps the default) while we follow it. `kubectl logs -f` stops at a rotation; our
// follower resumes from the last timestamp and drops the boundary lines, so `streamLogs` yields the complete log.
// The test checks in the kubelet's pod-logs directory that the log really was rotated.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubernetesEngine } from "../../../src/index.js";
import { RUN_CONTAINER_NAME } from "../../../src/pods/run-pod.js";
import { baseImage, deleteNamespace, engineNamespace, expectNoLeftovers, type EngineNamespace } from "../engine/helpers.js";
import { withinBound } from "./helpers.js";

const BURSTS = 16; // one per second
const LINES_PER_BURST = 2000;
const PAD = "x".repeat(1000); // ~1 KB lines: 2 MB/s, 32 MB in all, past 10 MiB three times

let ns: EngineNamespace;
let engine: KubernetesEngine;

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-rotate");
  engine = ns.engine();
});

afterAll(async () => {
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

/** Files in the kubelet's log directory of the pod's container (node-local: the test runs on the node). */
function logFiles(namespace: string, pod: string): string[] {
  const root = join(process.env.KCE_HOME ?? join(process.env.HOME ?? "/root", ".cache/kce"), "cluster/pod-logs");
  if (!existsSync(root)) return [];
  const dir = readdirSync(root).find((d) => d.startsWith(`${namespace}_${pod}_`));
  return dir ? readdirSync(join(root, dir, RUN_CONTAINER_NAME)) : [];
}

describe("row 14 — log rotation", () => {
  // row 14 | the kubelet rotates the log (10 MiB) while `streamLogs` follows a fast printer (32 MB) | the complete log: every line once and in order (resume with sinceTime, boundary lines dropped)
  it("streamLogs yields the complete log across kubelet log rotations", async () => {
    const script = [
      `pad=${PAD}`,
      `b=0; while [ $b -lt ${BURSTS} ]; do`,
      `  seq $((b*${LINES_PER_BURST}+1)) $(((b+1)*${LINES_PER_BURST})) | sed "s/$/ $pad/"`,
      "  b=$((b+1)); sleep 1",
      "done",
    ].join("\n");
    const container = await engine.run(baseImage(), { command: ["sh", "-c", script] });
    const started = Date.now();
    const rotated = new Set<string>();
    let count = 0;
    let outOfOrder = 0;
    let previous = 0;
    for await (const line of container.streamLogs()) {
      const n = Number(line.slice(0, line.indexOf(" ")));
      if (n !== previous + 1) outOfOrder++;
      previous = n;
      count++;
      if (count % 2000 === 0) for (const f of logFiles(ns.namespace, container.id)) if (f !== "0.log") rotated.add(f);
    }
    const ms = Date.now() - started;
    for (const f of logFiles(ns.namespace, container.id)) if (f !== "0.log") rotated.add(f);
    expect((await container.wait()).exitCode).toBe(0);
    expect([...rotated].length, "the kubelet did not rotate the log: the test proved nothing").toBeGreaterThan(0);
    expect(outOfOrder, "lines missing, repeated or out of order").toBe(0);
    expect(count).toBe(BURSTS * LINES_PER_BURST);
    withinBound("row14-rotation", ms, 60_000, { lines: count, rotations: rotated.size });
    await container.remove();
  });
});
