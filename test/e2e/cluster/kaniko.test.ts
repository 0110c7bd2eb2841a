// A Kaniko pod builds FROM the local base image, pushes to the open registry,
// and a pod runs the pushed image.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { env, uniqueName } from "../support/cluster-env.js";
import { apply, createNamespace, deleteNamespace, dockerfileConfigMap, logs, runOncePod, waitForPodDone } from "../support/kubectl.js";
import { HI_DOCKERFILE, kanikoPod } from "./kaniko-pod.js";

describe("Kaniko in the cluster", () => {
  let ns: string | undefined;
  beforeAll(async () => {
    ns = await createNamespace("kce-e2e-kaniko");
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  it("builds, pushes to the open registry, and the image runs", async () => {
    const image = `${env("KCE_REGISTRY_PUSH")}/e2e/kaniko-hi:${uniqueName("t")}`;
    await apply(dockerfileConfigMap(ns!, "context", HI_DOCKERFILE()));
    await apply(kanikoPod(ns!, "build", image));
    const phase = await waitForPodDone(ns!, "build");
    expect(phase, await logs(ns!, "build")).toBe("Succeeded");

    // nodes pull by KCE_REGISTRY; pods pushed by KCE_REGISTRY_PUSH (the same host here)
    const runImage = image.replace(env("KCE_REGISTRY_PUSH"), env("KCE_REGISTRY"));
    await apply(runOncePod(ns!, "run", runImage, ["cat", "/hi"]));
    expect(await waitForPodDone(ns!, "run")).toBe("Succeeded");
    expect(await logs(ns!, "run")).toBe("hi\n");
  });
});
