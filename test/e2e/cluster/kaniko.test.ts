// A Kaniko pod builds FROM the local base image, pushes to the open registry,
// and a pod runs the pushed image.
import { describe, it } from "vitest";
import { env, uniqueName } from "../support/cluster-env.js";
import { apply, dockerfileConfigMap } from "../support/kubectl.js";
import { expectBuildSucceeded, expectImageSaysHi, HI_DOCKERFILE, kanikoPod, pullName, useNamespace } from "./helpers.js";

describe("Kaniko in the cluster", () => {
  const ns = useNamespace("kce-e2e-kaniko");

  it("builds, pushes to the open registry, and the image runs", async () => {
    const image = `${env("KCE_REGISTRY_PUSH")}/e2e/kaniko-hi:${uniqueName("t")}`;
    await apply(dockerfileConfigMap(ns(), "context", HI_DOCKERFILE()));
    await apply(kanikoPod(ns(), "build", image));
    await expectBuildSucceeded(ns(), "build");
    await expectImageSaysHi(ns(), pullName(image));
  });
});
