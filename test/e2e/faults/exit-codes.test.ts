// Row 6 of the reliability matrix: a container that exits 3, is SIGTERMed, or is OOM-killed reports exit code
// 3 / 143 / 137 (+ `OOMKilled`) within ~5 s of its end, and its log stays readable (also after kill/stop, which
// delete the pod).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubernetesEngine } from "../../../src/index.js";
import { baseImage, deleteNamespace, engineNamespace, expectNoLeftovers, type EngineNamespace } from "../engine/helpers.js";
import { withinBound } from "./helpers.js";

let ns: EngineNamespace;
let engine: KubernetesEngine;

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-exit");
  // Run containers have no memory option in the contract; a LimitRange gives them a limit the way a cluster
  // administrator would.
  await ns.admin.call("create", "limitranges", (o) =>
    ns.admin.core.createNamespacedLimitRange(
      {
        namespace: ns.namespace,
        body: { metadata: { name: "small" }, spec: { limits: [{ type: "Container", _default: { memory: "48Mi" }, defaultRequest: { memory: "16Mi" } }] } },
      },
      o,
    ),
  );
  engine = ns.engine();
});

afterAll(async () => {
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

/** Milliseconds from the timestamp of the container's last log line to now (node and client share a clock). */
function sinceLastLine(stamped: string): number {
  const last = stamped.trim().split("\n").at(-1) ?? "";
  return Date.now() - Date.parse(last.split(" ")[0] ?? "");
}

describe("row 6 — how a container ended", () => {
  // row 6 | the container exits 3 | `wait()` → 3 within 5 s of its last line; `exitcode` 3; the log kept
  it("exit 3: wait() resolves with 3 within 5 s of the exit, the log is kept", async () => {
    const container = await engine.run(baseImage(), { command: ["sh", "-c", "echo about-to-exit; sleep 1; echo exiting; exit 3"] });
    expect(await container.wait()).toEqual({ exitCode: 3 });
    const stamped = await container.logs({ timestamps: true });
    withinBound("row6-exit3", sinceLastLine(stamped), 5_000);
    expect(container.exitcode).toBe(3);
    expect(container.reason).toBeNull();
    expect(container.error).toBeNull();
    expect(await container.logs()).toBe("about-to-exit\nexiting\n");
    await container.remove();
  });

  // row 6 | the container is SIGTERMed (`stop`/`kill TERM`) and exits by its handler | exit code 143 within 5 s; the log captured before the pod was deleted
  it("SIGTERM (stop): a process that handles it ends 143 within 5 s, the log is kept", async () => {
    const container = await engine.run(baseImage(), {
      command: ["sh", "-c", "trap 'echo got-sigterm; exit 143' TERM; echo ready; while :; do sleep 0.2; done"],
    });
    for await (const line of container.streamLogs()) if (line === "ready\n") break;
    const started = Date.now();
    await container.stop({ timeout: 30 });
    withinBound("row6-sigterm", Date.now() - started, 5_000);
    expect(container.status).toBe("exited");
    expect(container.exitcode).toBe(143);
    expect((await container.wait()).exitCode).toBe(143);
    expect(await container.logs()).toBe("ready\ngot-sigterm\n");
    await container.remove();
  });

  // row 6 | SIGTERM ignored (PID 1 without a handler), `stop(timeout=2)` | SIGKILL after the timeout: exit code 137 within timeout + 5 s
  it("SIGTERM ignored: stop(2) kills after the timeout, exit code 137", async () => {
    const container = await engine.run(baseImage(), { command: ["sh", "-c", "echo ignoring-sigterm; exec sleep 3600"] });
    for await (const line of container.streamLogs()) if (line === "ignoring-sigterm\n") break;
    const started = Date.now();
    await container.stop({ timeout: 2 });
    withinBound("row6-sigterm-ignored", Date.now() - started, 7_000);
    expect(container.exitcode).toBe(137);
    expect(await container.logs()).toBe("ignoring-sigterm\n");
    await container.remove();
  });

  // row 6 | the container is OOM-killed | exit code 137, reason `OOMKilled`, within 5 s of its last line; the log kept
  it("OOM-killed: exit code 137 with reason OOMKilled within 5 s, the log is kept", async () => {
    const container = await engine.run(baseImage(), { command: ["sh", "-c", "echo allocating; exec tail /dev/zero"] });
    const started = Date.now();
    expect(await container.wait()).toEqual({ exitCode: 137 });
    recordOom(Date.now() - started);
    expect(container.exitcode).toBe(137);
    expect(container.reason).toMatch(/^OOMKilled/);
    expect(container.podState.failure).toBe("oom");
    expect(container.error).toBeNull();
    const stamped = await container.logs({ timestamps: true });
    expect(stamped).toMatch(/ allocating\n$/);
    // The OOM kill comes after the last line by however long `tail` took to fill 48 MiB: bound it loosely.
    withinBound("row6-oom", sinceLastLine(stamped), 15_000);
    await container.remove();
  });
});

function recordOom(ms: number): void {
  withinBound("row6-oom-wait", ms, 60_000);
}
