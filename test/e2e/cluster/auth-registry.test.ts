// The htpasswd registry: a Kaniko push without credentials fails; with a
// kubernetes.io/dockerconfigjson Secret it succeeds, and a pod pulls the image
// with the same Secret as imagePullSecret.
import { beforeAll, describe, expect, it } from "vitest";
import { env, uniqueName } from "../support/cluster-env.js";
import { apply, dockerfileConfigMap, kubectl, logs, waitForPodDone } from "../support/kubectl.js";
import { expectBuildSucceeded, expectImageSaysHi, HI_DOCKERFILE, kanikoPod, useNamespace } from "./helpers.js";

describe("auth registry", () => {
  const ns = useNamespace("kce-e2e-auth");
  beforeAll(async () => {
    await apply(dockerfileConfigMap(ns(), "context", HI_DOCKERFILE()));
  });

  it("rejects a push without credentials", async () => {
    const image = `${env("KCE_AUTH_REGISTRY_PUSH")}/e2e/auth-hi:${uniqueName("t")}`;
    await apply(kanikoPod(ns(), "anonymous", image));
    expect(await waitForPodDone(ns(), "anonymous")).toBe("Failed");
    expect(await logs(ns(), "anonymous")).toMatch(/UNAUTHORIZED|authentication required|401/i);
  });

  it("accepts a push with a dockerconfigjson Secret, and pulls with it", async () => {
    const registry = env("KCE_AUTH_REGISTRY_PUSH");
    await kubectl([
      "-n", ns(), "create", "secret", "docker-registry", "regcred",
      `--docker-server=${registry}`, `--docker-username=${env("KCE_AUTH_USER")}`,
      `--docker-password=${env("KCE_AUTH_PASSWORD")}`,
    ]);
    // the nodes pull from KCE_AUTH_REGISTRY: the Secret must name that host too
    if (env("KCE_AUTH_REGISTRY") !== registry) throw new Error("test assumes push and pull hosts are equal");
    const image = `${registry}/e2e/auth-hi:${uniqueName("t")}`;
    await apply(kanikoPod(ns(), "authorized", image, "regcred"));
    await expectBuildSucceeded(ns(), "authorized");
    await expectImageSaysHi(ns(), image, { imagePullSecrets: [{ name: "regcred" }] });
  });
});
