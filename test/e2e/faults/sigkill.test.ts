// Row 11 of the reliability matrix: a client SIGKILLed mid-build or mid-run. No client code runs any more, so
// the cleanup must live in the cluster: the builder Job's deadline (`timeouts.buildSeconds`) ends the build, its
// TTL (`builderTtlSeconds`) deletes the Job, and the garbage collector its pod and credentials Secret — within
// deadline + TTL + 30 s. A run pod ends at its deadline (`timeouts.runSeconds`) and `gc` removes it.
// The client is a real `node` process running dist/index.js, killed with SIGKILL.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDist } from "../cli/helpers.js";
import { baseImage, deleteNamespace, engineNamespace, expectNoLeftovers, leftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";
import { allowedMs } from "../../support/measurements.js";
import { eventually, ROOT, startNode, withinBound } from "./helpers.js";

const BUILD_SECONDS = 15;
const TTL_SECONDS = 3;
const RUN_SECONDS = 15;

let ns: EngineNamespace;
let dir: string;
let script: string;

/** The client: builds or runs with the engine from dist/, printing every line, until it is killed. */
const CLIENT = `
import { KubernetesEngine } from ${JSON.stringify(join(ROOT, "dist/index.js"))};
const [mode, options, target, extra] = JSON.parse(process.argv[2]);
const engine = new KubernetesEngine(options);
if (mode === "build") {
  for await (const line of engine.build({ tag: target, path: extra })) process.stdout.write(line);
} else {
  const container = await engine.run(target, { command: extra });
  process.stdout.write("started " + container.id + "\\n");
  for await (const line of container.streamLogs()) process.stdout.write(line);
}
`;

beforeAll(async () => {
  await ensureDist();
  ns = await engineNamespace("e2e-faults-sigkill");
  dir = mkdtempSync(join(tmpdir(), "kce-faults-sigkill-"));
  script = join(dir, "client.mjs");
  writeFileSync(script, CLIENT);
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

describe("row 11 — the client is SIGKILLed", () => {
  // row 11 | client SIGKILLed mid-build | the builder's pod ends at its deadline (`buildSeconds`), the Job's TTL deletes the Job, its pod and its credentials Secret: all gone within deadline + TTL + 30 s, with no client and no gc
  it(`mid-build: Job, pod and Secret gone within deadline + TTL + 30 s (${BUILD_SECONDS + TTL_SECONDS + 30} s)`, async () => {
    const context = mkdtempSync(join(dir, "ctx-"));
    writeFileSync(join(context, "Dockerfile"), `FROM ${baseImage()}\nRUN echo killed-client-${Date.now()} && sleep 600\n`);
    const options = {
      namespace: ns.namespace,
      builder: "kaniko",
      // A Secret owned by the Job: it must go with it.
      registryCredentials: { registry: process.env.KCE_REGISTRY, username: "sigkill", password: "not-needed-by-the-open-registry" },
      timeouts: { buildSeconds: BUILD_SECONDS, builderTtlSeconds: TTL_SECONDS },
    };
    const child = startNode([script, JSON.stringify(["build", options, uniqueImage("sigkill"), context])]);
    await child.waitForOutput(/killed-client-/, 120_000);
    const objects = await leftovers(ns.admin);
    expect(objects.filter((o) => o.startsWith("job/"))).toHaveLength(1);
    expect(objects.filter((o) => o.startsWith("pod/"))).toHaveLength(1);
    expect(objects.filter((o) => o.startsWith("secret/"))).toHaveLength(1);
    child.process.kill("SIGKILL");
    const killedAt = Date.now();
    expect((await child.exited).signal).toBe("SIGKILL");
    const bound = (BUILD_SECONDS + TTL_SECONDS + 30) * 1000;
    const took = await eventually(async () => (await leftovers(ns.admin)).length === 0, bound, 1_000);
    if (took === null) throw new Error(`still there ${bound} ms after the SIGKILL: ${(await leftovers(ns.admin)).join(", ")}`);
    withinBound("row11-build-sigkill-cleanup", Date.now() - killedAt, bound);
  });

  // row 11 | client SIGKILLed mid-run | the pod ends at its deadline (`runSeconds`: phase Failed, DeadlineExceeded) within runSeconds + 30 s (+ its termination grace if it ignores SIGTERM); `gc` (any client, any time later) deletes it
  it(`mid-run: the pod ends at runSeconds (${RUN_SECONDS} s) and gc removes it`, async () => {
    const options = { namespace: ns.namespace, timeouts: { runSeconds: RUN_SECONDS } };
    const child = startNode([script, JSON.stringify(["run", options, baseImage(), ["sh", "-c", "trap 'exit 143' TERM; echo run-alive; while :; do sleep 0.2; done"]])]);
    await child.waitForOutput(/run-alive/, 60_000);
    const pod = /started (\S+)/.exec(child.output())?.[1] ?? "";
    child.process.kill("SIGKILL");
    const killedAt = Date.now();
    await child.exited;
    const bound = (RUN_SECONDS + 30) * 1000;
    const ended = await eventually(async () => {
      const p = await ns.admin.call("get", "pods", (o) => ns.admin.core.readNamespacedPod({ name: pod, namespace: ns.namespace }, o));
      return p.status?.phase === "Failed" && p.status.reason === "DeadlineExceeded";
    }, allowedMs(bound), 1_000);
    expect(ended, `pod ${pod} did not end at its deadline`).not.toBeNull();
    withinBound("row11-run-sigkill-deadline", Date.now() - killedAt, bound);

    const actions = await ns.engine().gc();
    expect(actions).toContainEqual(expect.objectContaining({ kind: "Pod", name: pod }));
    await expectNoLeftovers(ns.admin, 10_000);
  });
});
