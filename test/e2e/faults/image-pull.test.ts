// Row 3 of the reliability matrix: an image that cannot be pulled — the run image or the builder image — is a
// typed image-pull failure within the configured grace (+ ~15 s), with the kubelet's reason, never "running"
// or a hang. Nothing is left afterwards.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, ImagePullError } from "../../../src/index.js";
import { baseImage, collect, deleteNamespace, engineNamespace, expectNoLeftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";
import { failure, withinBound } from "./helpers.js";

const GRACE_SECONDS = 5;
const BOUND_MS = (GRACE_SECONDS + 15) * 1000;

let ns: EngineNamespace;
let context: string;

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-pull");
  context = mkdtempSync(join(tmpdir(), "kce-faults-pull-"));
  writeFileSync(join(context, "Dockerfile"), `FROM ${baseImage()}\nRUN echo pull-${Date.now()}\n`);
});

afterAll(async () => {
  rmSync(context, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

describe("row 3 — image unpullable", () => {
  // row 3 | run image missing from its registry | `run` returns the container `exited`, exit code 125, `error` an ImagePullError with the kubelet's reason (ErrImagePull/ImagePullBackOff), after `imagePullGraceSeconds` (+ ≤ 15 s)
  it("a run image missing from the registry: exited 125 with an ImagePullError, within the grace", async () => {
    const engine = ns.engine({ timeouts: { imagePullGraceSeconds: GRACE_SECONDS } });
    const image = `${process.env.KCE_REGISTRY}/kce-e2e/no-such-image:missing`;
    const started = Date.now();
    const container = await engine.run(image, { command: ["true"] });
    const ms = Date.now() - started;
    expect(container.status).toBe("exited");
    expect(container.exitcode).toBe(125);
    expect(container.podState.failure).toBe("image-pull");
    expect(container.reason).toMatch(/^(ErrImagePull|ImagePullBackOff): .*no-such-image/);
    expect(container.error).toBeInstanceOf(ImagePullError);
    expect(container.error).toMatchObject({ image });
    expect(container.error?.message).toContain(image);
    expect((await container.wait()).exitCode).toBe(125);
    withinBound("row3-run-image-missing", ms, BOUND_MS);
    await container.remove();
  });

  // row 3 | run image on a registry that refuses connections | the same ImagePullError, after the grace (+ ≤ 15 s)
  it("a run image on an unreachable registry: exited 125 with an ImagePullError", async () => {
    const engine = ns.engine({ timeouts: { imagePullGraceSeconds: GRACE_SECONDS } });
    const image = "127.0.0.1:1/kce-e2e/unreachable:latest";
    const started = Date.now();
    const container = await engine.run(image, { command: ["true"] });
    const ms = Date.now() - started;
    expect(container.status).toBe("exited");
    expect(container.exitcode).toBe(125);
    expect(container.error).toBeInstanceOf(ImagePullError);
    expect(container.reason).toMatch(/ImagePull|ErrImagePull/);
    withinBound("row3-run-registry-unreachable", ms, BOUND_MS);
    await container.remove();
  });

  // row 3 | builder image unpullable | BuildError reason `image-pull` naming the builder image and how to configure it, after the grace (+ ≤ 15 s); the Job is deleted
  it("an unpullable builder image: BuildError image-pull within the grace", async () => {
    const builderImage = `${process.env.KCE_REGISTRY}/kce-e2e/no-such-kaniko:v0`;
    const engine = ns.engine({ builder: "kaniko", builderImages: { kaniko: builderImage }, contentAddressed: false, timeouts: { imagePullGraceSeconds: GRACE_SECONDS } });
    const { error, ms } = await failure(collect(engine.build({ tag: uniqueImage("pull"), path: context })));
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("image-pull");
    expect(error.message).toContain(builderImage);
    expect(error.message).toMatch(/ErrImagePull|ImagePullBackOff/);
    withinBound("row3-builder-image-missing", ms, BOUND_MS);
    await expectNoLeftovers(ns.admin, 30_000);
  });
  // row 3 | builder image with an invalid name (the kubelet's InvalidImageName) | BuildError reason `image-pull` at once — no retry can fix it, so no grace — within 15 s; the Job is deleted
  it("a builder image with an invalid name: BuildError image-pull without waiting for the grace", async () => {
    const engine = ns.engine({ builder: "kaniko", builderImages: { kaniko: "Invalid/Kaniko::Name" }, contentAddressed: false, timeouts: { imagePullGraceSeconds: 300 } });
    const { error, ms } = await failure(collect(engine.build({ tag: uniqueImage("badname"), path: context })));
    expect(error).toBeInstanceOf(BuildError);
    expect((error as BuildError).reason).toBe("image-pull");
    expect(error.message).toMatch(/InvalidImageName/);
    withinBound("row3-builder-image-invalid", ms, 15_000);
    await expectNoLeftovers(ns.admin, 30_000);
  });
});
