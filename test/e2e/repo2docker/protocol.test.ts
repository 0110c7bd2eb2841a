// The adapter when `kce rpc` fails: it dies before answering, mid-stream, or is killed while a real call
// waits — each becomes a KceProtocolError naming the exit and kce's last words, never a hang.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { withinBound } from "../../support/measurements.js";
import { baseImage, deleteNamespace } from "../engine/helpers.js";
import { namespaceClient } from "../kube/helpers.js";
import { python, setupRepo2docker, type R2dEnvironment } from "./helpers.js";

let r2d: R2dEnvironment;
let dir: string;

beforeAll(async () => {
  r2d = await setupRepo2docker();
  dir = mkdtempSync(join(tmpdir(), "kce-r2d-protocol-"));
}, 900_000);

/** A fake `kce` (the adapter appends `rpc`) that reads one request, runs `body`, and exits. */
function fakeKce(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nread request\n${body}\n`, { mode: 0o755 });
  return path;
}

const PRELUDE = `
import sys, time
from repo2docker_kce import KubernetesEngine, KceProtocolError
engine = KubernetesEngine(parent=None)
started = time.time()
def report(err):
    print("RAISED", type(err).__name__, "after", round(time.time() - started, 1), "s:", err, flush=True)
`;

describe("protocol failures", () => {
  it("kce rpc cannot be started: a clear error", async () => {
    const { code, output } = await python(r2d, `${PRELUDE}
try:
    engine.inspect_image("x")
except KceProtocolError as err:
    report(err)
`, { KCE_BIN: join(dir, "does-not-exist") });
    expect(code, output).toBe(0);
    expect(output).toMatch(/RAISED KceProtocolError .*cannot start .*does-not-exist rpc/);
  });

  it("kce rpc exits before answering", async () => {
    const kce = fakeKce("dies", 'echo "kce: out of cheese" >&2\nexit 7');
    const { code, output } = await python(r2d, `${PRELUDE}
try:
    engine.inspect_image("x")
except KceProtocolError as err:
    report(err)
`, { KCE_BIN: kce });
    expect(code, output).toBe(0);
    expect(output).toMatch(/RAISED KceProtocolError after \d+(\.\d)? s: .* exited with code 7 during inspectImage/);
    expect(output).toContain("kce: out of cheese");
  });

  it("kce rpc dies in the middle of a build stream: the lines so far, then the error", async () => {
    const kce = fakeKce("dies-mid-build", `printf '%s\\n' '{"id": 1, "line": "step 1\\n"}'\nsleep 0.2\necho "kce: crashed" >&2\nexit 9`);
    const { code, output } = await python(r2d, `${PRELUDE}
try:
    for line in engine.build(tag="x", path=".", dockerfile="Dockerfile"):
        print("LINE", repr(line), flush=True)
except KceProtocolError as err:
    report(err)
`, { KCE_BIN: kce });
    expect(code, output).toBe(0);
    expect(output).toContain("LINE 'step 1\\n'");
    expect(output).toMatch(/RAISED KceProtocolError .* exited with code 9 during build/);
  });

  describe("on the cluster", () => {
    let admin: KubeClient;
    beforeAll(async () => {
      admin = await namespaceClient("e2e-r2d-proto");
    });
    afterAll(async () => {
      await deleteNamespace(admin); // takes the orphaned pod with it
    });

    it("the real kce rpc is killed while a log stream waits: KceProtocolError, promptly", async () => {
      const { code, output } = await python(r2d, `${PRELUDE}
import os, signal, threading
engine.namespace = ${JSON.stringify(admin.namespace)}
container = engine.run(${JSON.stringify(baseImage())}, command=["sh", "-c", "echo started; sleep 600"])
print("STATUS", container.status, flush=True)
pid = engine._rpc()._proc.pid
threading.Timer(3, lambda: os.kill(pid, signal.SIGKILL)).start()
started = time.time()
try:
    for line in container.logs(stream=True):
        print("LOG", line, flush=True)
except KceProtocolError as err:
    report(err)
try:
    container.reload()
except KceProtocolError as err:
    print("THEN", type(err).__name__, flush=True)
`, {}, 90_000);
      expect(code, output).toBe(0);
      expect(output).toContain("STATUS running");
      expect(output).toContain("LOG b'started\\n'");
      const raised = /RAISED KceProtocolError after (\d+(?:\.\d)?) s: .* exited with code -9 during container.streamLogs/.exec(output);
      expect(raised, output).not.toBeNull();
      // killed 3 s in: the error must follow the kill, not a server-side timeout
      const afterKill = Number(raised?.[1]) * 1000 - 3_000;
      expect(afterKill).toBeGreaterThanOrEqual(-100);
      withinBound("repo2docker/rpc-killed-error", Math.max(0, afterKill), 5_000);
      expect(output).toContain("THEN KceProtocolError");
    });
  });
});
