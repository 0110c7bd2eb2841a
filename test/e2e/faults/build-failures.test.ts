// Rows 4, 7 and 8 of the reliability matrix: builds that fail. A missing base image or a failing RUN is a
// BuildError with the exit code and the builder's last lines; a build past its deadline is a typed timeout the
// server enforced (the pod's activeDeadlineSeconds); a builder pod deleted mid-build — also one whose process
// traps SIGTERM and exits 0, so the pod ends `Succeeded` — is a `deleted` BuildError within ~5 s, never success.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, type KubernetesEngine } from "../../../src/index.js";
import { baseImage, collect, contextDir, deleteNamespace, engineNamespace, expectNoLeftovers, leftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";
import { failure, noLeftoversWithin, sleep, withinBound } from "./helpers.js";

let ns: EngineNamespace;
let dir: string;

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-buildfail");
  dir = mkdtempSync(join(tmpdir(), "kce-faults-buildfail-"));
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

const context = (files: Record<string, string>): string => contextDir(dir, files);

/** Builds, stopping at the first line matching `marker` to call `act`; resolves with the build's error. */
async function buildUntil(engine: KubernetesEngine, path: string, marker: RegExp, act: () => Promise<void>): Promise<{ error: Error; ms: number; lines: string[] }> {
  const lines: string[] = [];
  let actedAt = 0;
  const run = (async () => {
    for await (const line of engine.build({ tag: uniqueImage("fail"), path })) {
      lines.push(line);
      if (actedAt === 0 && marker.test(line)) {
        actedAt = Date.now();
        await act();
      }
    }
  })();
  const { error } = await failure(run);
  if (!(error instanceof BuildError) || !["deleted", "deadline"].includes(error.reason)) console.log(`build failure as reported: ${error.message}`);
  return { error, ms: actedAt === 0 ? -1 : Date.now() - actedAt, lines };
}

/** The builder pod of the namespace's only build. */
async function builderPod(): Promise<string> {
  const pod = (await leftovers(ns.admin)).find((o) => o.startsWith("pod/"));
  if (!pod) throw new Error("no builder pod");
  return pod.slice("pod/".length);
}

async function deletePod(name: string): Promise<void> {
  await ns.admin.call("delete", "pods", (o) => ns.admin.core.deleteNamespacedPod({ name, namespace: ns.namespace }, o));
}

describe("row 4 — the Dockerfile fails", () => {
  // row 4 | `FROM` an image that does not exist | BuildError naming the missing image, with the builder's last lines; nothing left
  it("FROM a missing image: BuildError naming it, with the builder's last lines", async () => {
    const missing = `${process.env.KCE_REGISTRY}/kce-e2e/no-such-base:none`;
    const { error, ms } = await failure(collect(ns.engine({ builder: "kaniko" }).build({ tag: uniqueImage("nobase"), path: context({ Dockerfile: `FROM ${missing}\nRUN true\n` }) })));
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("failed");
    expect(error.message).toContain("kce-e2e/no-such-base");
    expect((error as BuildError).logTail.length).toBeGreaterThan(0);
    withinBound("row4-missing-base", ms, 30_000);
    await noLeftoversWithin("row4-missing-base", ns.admin, 30_000);
  });

  // row 4 | a `RUN` that exits 3 | BuildError with exit code 3, the failing command's error line first and the builder's last lines (incl. the RUN's own output)
  it("a failing RUN: BuildError with exit code 3 and the builder's last lines", async () => {
    const path = context({ Dockerfile: `FROM ${baseImage()}\nRUN echo about-to-fail-${Date.now()} && exit 3\n` });
    const { error, ms } = await failure(collect(ns.engine({ builder: "kaniko" }).build({ tag: uniqueImage("run3"), path })));
    expect(error).toBeInstanceOf(BuildError);
    expect(error).toMatchObject({ reason: "failed", exitCode: 3 });
    expect(error.message).toMatch(/^build failed: .*exit (status|code):? 3/);
    expect((error as BuildError).logTail.join("\n")).toContain("about-to-fail-");
    withinBound("row4-failing-run", ms, 30_000);
    await noLeftoversWithin("row4-failing-run", ns.admin, 30_000);
  });
});

describe("row 7 — the build deadline passes", () => {
  // row 7 | the build runs past `timeouts.buildSeconds` | BuildError reason `deadline` from the pod's server-side activeDeadlineSeconds (DeadlineExceeded), within deadline + 30 s (the kubelet kills after a 5 s grace); nothing left
  it("a build past buildSeconds is a BuildError deadline, enforced by the server", async () => {
    const DEADLINE = 10;
    const engine = ns.engine({ builder: "kaniko", timeouts: { buildSeconds: DEADLINE } });
    const path = context({ Dockerfile: `FROM ${baseImage()}\nRUN echo past-deadline-${Date.now()} && sleep 600\n` });
    const started = Date.now();
    const { error } = await failure(collect(engine.build({ tag: uniqueImage("deadline"), path })), started);
    const ms = Date.now() - started;
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("deadline");
    expect(error.message).toMatch(/DeadlineExceeded/);
    // From build() on: pod start, the deadline, the kubelet's kill after the builder's 5 s grace, the report.
    withinBound("row7-deadline", ms, (DEADLINE + 30) * 1000);
    expect(ms).toBeGreaterThanOrEqual(DEADLINE * 1000 - 1000);
    await noLeftoversWithin("row7-deadline", ns.admin, 30_000);
  });
});

describe("row 8 — the builder pod is deleted mid-build", () => {
  // row 8 | the builder pod deleted mid-build (`kubectl delete pod`) | BuildError reason `deleted` within 5 s, never success; nothing left
  it("the Kaniko pod deleted mid-build: BuildError deleted within 5 s", async () => {
    const path = context({ Dockerfile: `FROM ${baseImage()}\nRUN echo deleted-mid-build-${Date.now()} && sleep 600\n` });
    const { error, ms } = await buildUntil(ns.engine({ builder: "kaniko" }), path, /deleted-mid-build-/, async () => deletePod(await builderPod()));
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("deleted");
    expect(error.message).toMatch(/deleted/);
    withinBound("row8-builder-deleted", ms, 5_000);
    await noLeftoversWithin("row8-builder-deleted", ns.admin, 30_000);
  });

  // row 8 | a builder whose process traps SIGTERM and exits 0 is deleted mid-build (the pod ends `Succeeded`) | BuildError reason `deleted` ("it exited 0 after the delete: not a finished build") within 5 s, never success
  it("a builder that traps SIGTERM and exits 0, deleted mid-build: BuildError deleted, never success", async () => {
    // A stand-in builder: reads the context from stdin like Kaniko, then works until SIGTERM, and exits 0.
    const fake = uniqueImage("fake-builder");
    const script = [
      "#!/bin/sh",
      "trap 'echo fake-builder: SIGTERM, exiting 0; exit 0' TERM",
      "cat > /dev/null",
      "echo fake-builder: working",
      "while :; do sleep 0.2; done",
      "",
    ].join("\n");
    await collect(ns.engine({ builder: "kaniko" }).build({
      tag: fake,
      path: context({ "fake-builder.sh": script, Dockerfile: `FROM ${baseImage()}\nCOPY fake-builder.sh /fake-builder.sh\nENTRYPOINT ["/fake-builder.sh"]\n` }),
    }));
    const engine = ns.engine({ builder: "kaniko", builderImages: { kaniko: `${process.env.KCE_REGISTRY}/${fake}` }, contentAddressed: false });
    const path = context({ Dockerfile: `FROM ${baseImage()}\nRUN echo never-built-${Date.now()}\n` });
    const { error, ms, lines } = await buildUntil(engine, path, /fake-builder: working/, async () => {
      await sleep(200);
      await deletePod(await builderPod());
    });
    expect(lines.join("")).toContain("fake-builder: SIGTERM, exiting 0");
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("deleted");
    expect(error.message).toMatch(/deleted/);
    withinBound("row8-builder-deleted-exit0", ms, 5_000);
    await noLeftoversWithin("row8-builder-deleted-exit0", ns.admin, 30_000);
  });
});
