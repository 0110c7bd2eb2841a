// Row 5 of the reliability matrix: a pod no node can take is a typed failure carrying the scheduler's own
// message after the configured wait (`unschedulableGraceSeconds`), for run containers and builders alike.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, UnschedulableError } from "../../../src/index.js";
import { baseImage, collect, deleteNamespace, engineNamespace, expectNoLeftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";
import { failure, withinBound } from "./helpers.js";

const GRACE_SECONDS = 5;
const BOUND_MS = (GRACE_SECONDS + 15) * 1000;
const NOWHERE = { "kce-e2e/no-such-node": "true" };

let ns: EngineNamespace;
let context: string;

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-sched");
  context = mkdtempSync(join(tmpdir(), "kce-faults-sched-"));
  writeFileSync(join(context, "Dockerfile"), `FROM ${baseImage()}\nRUN echo sched-${Date.now()}\n`);
});

afterAll(async () => {
  rmSync(context, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

describe("row 5 — unschedulable", () => {
  // row 5 | run pod no node can take (node selector) | `run` returns it `exited` 125 with `error` an UnschedulableError quoting the scheduler ("0/1 nodes are available: …") after `unschedulableGraceSeconds` (+ ≤ 15 s)
  it("a run pod no node fits: exited 125 with an UnschedulableError quoting the scheduler", async () => {
    const engine = ns.engine({ nodeSelector: NOWHERE, timeouts: { unschedulableGraceSeconds: GRACE_SECONDS } });
    const started = Date.now();
    const container = await engine.run(baseImage(), { command: ["true"] });
    const ms = Date.now() - started;
    expect(container.status).toBe("exited");
    expect(container.exitcode).toBe(125);
    expect(container.podState.failure).toBe("unschedulable");
    expect(container.reason).toMatch(/^Unschedulable: 0\/1 nodes are available: .*node affinity\/selector/);
    expect(container.error).toBeInstanceOf(UnschedulableError);
    expect(container.error?.message).toMatch(/0\/1 nodes are available/);
    withinBound("row5-run-unschedulable", ms, BOUND_MS);
    // Not before the grace: the scheduler may still find a node.
    expect(ms).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000 - 1000);
    await container.remove();
  });

  // row 5 | builder pod no node can take | BuildError reason `unschedulable` with the scheduler's message after the grace (+ ≤ 15 s); the Job is deleted
  it("a builder no node fits: BuildError unschedulable with the scheduler's message", async () => {
    const engine = ns.engine({ builder: "kaniko", nodeSelector: NOWHERE, contentAddressed: false, timeouts: { unschedulableGraceSeconds: GRACE_SECONDS } });
    const { error, ms } = await failure(collect(engine.build({ tag: uniqueImage("sched"), path: context })));
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("unschedulable");
    expect(error.message).toMatch(/0\/1 nodes are available: .*node affinity\/selector/);
    withinBound("row5-builder-unschedulable", ms, BOUND_MS);
    await expectNoLeftovers(ns.admin, 30_000);
  });
});
