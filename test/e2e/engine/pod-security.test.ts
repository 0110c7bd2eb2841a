// Pod Security: in a namespace that enforces the `baseline` level, Kaniko builds and run containers are
// admitted (Kaniko runs as root but not privileged, with default capabilities; run pods drop NET_RAW and
// privilege escalation), while a privileged BuildKit builder is refused by the cluster — and the engine says
// so with a BuildError quoting the admission message instead of waiting.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { BuildError } from "../../../src/index.js";
import { baseImage, collect, deleteNamespace, engineNamespace, expectNoLeftovers, tarOf, uniqueImage, type EngineNamespace } from "./helpers.js";

let ns: EngineNamespace;

beforeAll(async () => {
  ns = await engineNamespace("e2e-psa");
  const labels = { "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "latest" };
  await ns.admin.call("patch", "namespaces", (o) =>
    ns.admin.core.patchNamespace({ name: ns.namespace, body: { metadata: { labels } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch, o)),
  );
});

afterAll(async () => {
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

const dockerfile = (marker: string): string => `FROM ${baseImage()}\nRUN echo ${marker} > /marker\nCMD ["cat", "/marker"]\n`;

describe("a namespace enforcing Pod Security baseline", () => {
  it("admits the Kaniko builder and the run pod", async () => {
    const engine = ns.engine({ builder: "kaniko", contentAddressed: false });
    const tag = uniqueImage("psa");
    const stream = engine.build({ tag, context: tarOf({ Dockerfile: dockerfile(`psa-${Date.now()}`) }) });
    await collect(stream);
    const container = await engine.run((await stream.result).image);
    await container.wait();
    expect(container.exitcode).toBe(0);
    expect(await container.logs()).toMatch(/^psa-\d+\n$/);
    await container.remove();
  });

  it("refuses a privileged BuildKit builder, reported as a BuildError quoting the admission", async () => {
    const engine = ns.engine({ builder: "buildkit", buildkitMode: "privileged", contentAddressed: false });
    const error = await collect(engine.build({ tag: uniqueImage("psa-bk"), context: tarOf({ Dockerfile: dockerfile("never") }) })).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(BuildError);
    expect((error as Error).message).toMatch(/violates PodSecurity "baseline/);
  });
});
