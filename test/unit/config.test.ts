import { describe, expect, it } from "vitest";
import {
  DEFAULT_BUILDER_IMAGES,
  DEFAULT_TIMEOUTS,
  isConventionallyInsecure,
  parseRegistryCredentials,
  resolveEngineConfig,
  resolveRegistry,
  type KubernetesEngineOptions,
} from "../../src/config.js";
import { InvalidInputError } from "../../src/errors.js";
import { thrown } from "../support/thrown.js";

/** The error a call throws (fails the test when it does not throw). */

describe("resolveEngineConfig defaults", () => {
  const config = resolveEngineConfig({}, {});
  it.each<[string, unknown]>([
    ["namespace", null],
    ["builder", "kaniko"],
    ["buildkitMode", "auto"],
    ["registry", null],
    ["registryCredentials", null],
    ["builderImages", { ...DEFAULT_BUILDER_IMAGES }],
    ["timeouts", { ...DEFAULT_TIMEOUTS }],
    ["labels", {}],
    ["serviceAccountName", null],
    ["nodeSelector", {}],
    ["tolerations", []],
    ["builderResources", {}],
  ])("%s → %j", (key, expected) => {
    expect(config[key as keyof typeof config]).toEqual(expected);
  });

  it("has the documented default timeouts", () => {
    expect(DEFAULT_TIMEOUTS).toEqual({
      buildSeconds: 3600,
      builderTtlSeconds: 300,
      runSeconds: 86400,
      imagePullGraceSeconds: 30,
      unschedulableGraceSeconds: 60,
      apiRequestMs: 10_000,
    });
  });

  it("makes a random, valid instance id per call", () => {
    const a = resolveEngineConfig({}, {}).instanceId;
    const b = resolveEngineConfig({}, {}).instanceId;
    expect(a).toMatch(/^kce-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
  });

  it("merges partial timeouts over the defaults", () => {
    expect(resolveEngineConfig({ timeouts: { buildSeconds: 10, runSeconds: 0 } }, {}).timeouts).toEqual({
      ...DEFAULT_TIMEOUTS,
      buildSeconds: 10,
      runSeconds: 0,
    });
  });

  it("copies what it is given rather than aliasing it", () => {
    const options: KubernetesEngineOptions = { labels: { a: "b" }, nodeSelector: { n: "1" }, tolerations: [{ key: "k" }] };
    const config = resolveEngineConfig(options, {});
    expect(config.labels).toEqual({ a: "b" });
    expect(config.labels).not.toBe(options.labels);
    expect(config.nodeSelector).not.toBe(options.nodeSelector);
    expect(config.tolerations).not.toBe(options.tolerations);
    expect(config.tolerations).toEqual([{ key: "k" }]);
  });
});

describe("resolveEngineConfig environment fallbacks", () => {
  const credentials = { registry: "r.io", username: "u", password: "p" };
  it.each<[string, KubernetesEngineOptions, Record<string, string>, (c: ReturnType<typeof resolveEngineConfig>) => unknown, unknown]>([
    ["KCE_NAMESPACE", {}, { KCE_NAMESPACE: "ci" }, (c) => c.namespace, "ci"],
    ["namespace option over KCE_NAMESPACE", { namespace: "mine" }, { KCE_NAMESPACE: "ci" }, (c) => c.namespace, "mine"],
    ["KCE_BUILDER", {}, { KCE_BUILDER: "buildkit" }, (c) => c.builder, "buildkit"],
    ["builder option over KCE_BUILDER", { builder: "kaniko" }, { KCE_BUILDER: "buildkit" }, (c) => c.builder, "kaniko"],
    ["KCE_BUILDKIT_MODE", {}, { KCE_BUILDKIT_MODE: "rootless" }, (c) => c.buildkitMode, "rootless"],
    ["KCE_KANIKO_IMAGE", {}, { KCE_KANIKO_IMAGE: "mirror/kaniko:1" }, (c) => c.builderImages.kaniko, "mirror/kaniko:1"],
    ["KCE_KANIKO_IMAGE keeps the buildkit default", {}, { KCE_KANIKO_IMAGE: "m/k" }, (c) => c.builderImages.buildkit, DEFAULT_BUILDER_IMAGES.buildkit],
    ["builderImages option over KCE_KANIKO_IMAGE", { builderImages: { kaniko: "opt/k" } }, { KCE_KANIKO_IMAGE: "env/k" }, (c) => c.builderImages.kaniko, "opt/k"],
    ["KCE_BUILDKIT_IMAGE", {}, { KCE_BUILDKIT_IMAGE: "mirror/bk" }, (c) => c.builderImages.buildkit, "mirror/bk"],
    [
      "KCE_REGISTRY",
      {},
      { KCE_REGISTRY: "localhost:5001" },
      (c) => c.registry,
      { host: "localhost:5001", pushHost: "localhost:5001", apiHost: "localhost:5001", insecure: true, credentialsSecret: null },
    ],
    [
      "KCE_REGISTRY with KCE_REGISTRY_PUSH and KCE_REGISTRY_SECRET",
      {},
      { KCE_REGISTRY: "localhost:5001", KCE_REGISTRY_PUSH: "kind-registry:5000", KCE_REGISTRY_SECRET: "pull" },
      (c) => c.registry,
      { host: "localhost:5001", pushHost: "kind-registry:5000", apiHost: "localhost:5001", insecure: true, credentialsSecret: "pull" },
    ],
    ["KCE_REGISTRY_PUSH alone configures nothing", {}, { KCE_REGISTRY_PUSH: "kind-registry:5000" }, (c) => c.registry, null],
    [
      "registry option over KCE_REGISTRY",
      { registry: { host: "ghcr.io" } },
      { KCE_REGISTRY: "localhost:5001", KCE_REGISTRY_PUSH: "kind-registry:5000" },
      (c) => c.registry,
      { host: "ghcr.io", pushHost: "ghcr.io", apiHost: "ghcr.io", insecure: false, credentialsSecret: null },
    ],
    [
      "CONTAINER_ENGINE_REGISTRY_CREDENTIALS",
      {},
      { CONTAINER_ENGINE_REGISTRY_CREDENTIALS: JSON.stringify(credentials) },
      (c) => c.registryCredentials,
      credentials,
    ],
    [
      "registryCredentials option over the environment",
      { registryCredentials: { registry: "o.io", username: "o", password: "q" } },
      { CONTAINER_ENGINE_REGISTRY_CREDENTIALS: "not even json" },
      (c) => c.registryCredentials,
      { registry: "o.io", username: "o", password: "q" },
    ],
    ["context compression defaults to auto", {}, {}, (c) => c.contextCompression, "auto"],
    ["KCE_CONTEXT_COMPRESSION level", {}, { KCE_CONTEXT_COMPRESSION: "6" }, (c) => c.contextCompression, 6],
    ["KCE_CONTEXT_COMPRESSION none is level 0", {}, { KCE_CONTEXT_COMPRESSION: "none" }, (c) => c.contextCompression, 0],
    ["contextCompression option over the environment", { contextCompression: 1 }, { KCE_CONTEXT_COMPRESSION: "9" }, (c) => c.contextCompression, 1],
    ["empty CONTAINER_ENGINE_REGISTRY_CREDENTIALS is unset", {}, { CONTAINER_ENGINE_REGISTRY_CREDENTIALS: "" }, (c) => c.registryCredentials, null],
  ])("%s", (_name, options, env, pick, expected) => {
    expect(pick(resolveEngineConfig(options, env))).toEqual(expected);
  });
});

describe("resolveEngineConfig validation", () => {
  it.each<[string, KubernetesEngineOptions, Record<string, string>, RegExp]>([
    ["builder option", { builder: "docker" as never }, {}, /^builder must be/],
    ["contextCompression option", { contextCompression: 10 }, {}, /^contextCompression must be "auto", "none" or a gzip level 0–9, not 10/],
    ["KCE_CONTEXT_COMPRESSION", {}, { KCE_CONTEXT_COMPRESSION: "fast" }, /^KCE_CONTEXT_COMPRESSION must be .* not "fast"/],
    ["KCE_BUILDER", {}, { KCE_BUILDER: "podman" }, /^builder must be .*"podman"/],
    ["buildkitMode option", { buildkitMode: "fast" as never }, {}, /^buildkitMode/],
    ["KCE_BUILDKIT_MODE", {}, { KCE_BUILDKIT_MODE: "x" }, /^buildkitMode/],
    ["namespace with upper case", { namespace: "Prod" }, {}, /^namespace "Prod"/],
    ["namespace with a dot", { namespace: "a.b" }, {}, /^namespace/],
    ["empty namespace", { namespace: "" }, {}, /^namespace ""/],
    ["namespace too long", { namespace: "n".repeat(64) }, {}, /^namespace/],
    ["KCE_NAMESPACE", {}, { KCE_NAMESPACE: "-bad" }, /^namespace "-bad"/],
    ["buildSeconds zero", { timeouts: { buildSeconds: 0 } }, {}, /^timeouts\.buildSeconds must be a positive/],
    ["buildSeconds negative", { timeouts: { buildSeconds: -1 } }, {}, /^timeouts\.buildSeconds/],
    ["buildSeconds NaN", { timeouts: { buildSeconds: Number.NaN } }, {}, /^timeouts\.buildSeconds/],
    ["buildSeconds infinite", { timeouts: { buildSeconds: Number.POSITIVE_INFINITY } }, {}, /^timeouts\.buildSeconds/],
    ["apiRequestMs zero", { timeouts: { apiRequestMs: 0 } }, {}, /^timeouts\.apiRequestMs must be a positive/],
    ["builderTtlSeconds negative", { timeouts: { builderTtlSeconds: -5 } }, {}, /^timeouts\.builderTtlSeconds must be a non-negative/],
    ["runSeconds negative", { timeouts: { runSeconds: -1 } }, {}, /^timeouts\.runSeconds/],
    ["imagePullGraceSeconds negative", { timeouts: { imagePullGraceSeconds: -1 } }, {}, /^timeouts\.imagePullGraceSeconds/],
    ["unschedulableGraceSeconds NaN", { timeouts: { unschedulableGraceSeconds: Number.NaN } }, {}, /^timeouts\.unschedulableGraceSeconds/],
    ["instanceId with a space", { instanceId: "my engine" }, {}, /^instanceId "my engine"/],
    ["instanceId too long", { instanceId: "i".repeat(64) }, {}, /^instanceId/],
    ["empty instanceId", { instanceId: "" }, {}, /^instanceId ""/],
    ["label value", { labels: { team: "data science" } }, {}, /^label team=data science/],
    ["registry.host with a scheme", { registry: { host: "http://localhost:5001" } }, {}, /^registry\.host/],
    ["registry.pushHost with a path", { registry: { host: "r.io", pushHost: "r.io/v2" } }, {}, /^registry\.pushHost/],
    ["KCE_REGISTRY with a space", {}, { KCE_REGISTRY: "r.io x" }, /^registry\.host/],
    ["credentials JSON", {}, { CONTAINER_ENGINE_REGISTRY_CREDENTIALS: "{" }, /CONTAINER_ENGINE_REGISTRY_CREDENTIALS/],
  ])("rejects %s", (_name, options, env, message) => {
    const error = thrown(() => resolveEngineConfig(options, env));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(message);
  });

  it.each<[string, KubernetesEngineOptions]>([
    ["zero run, pull and unschedulable timeouts and TTL", { timeouts: { runSeconds: 0, imagePullGraceSeconds: 0, unschedulableGraceSeconds: 0, builderTtlSeconds: 0 } }],
    ["a 63-character namespace", { namespace: "n".repeat(63) }],
    ["a 63-character instance id with . _ -", { instanceId: `a.b_c-${"d".repeat(57)}` }],
    ["label values with . _ -", { labels: { a: "x.y_z-1" } }],
  ])("accepts %s", (_name, options) => {
    expect(() => resolveEngineConfig(options, {})).not.toThrow();
  });
});

describe("isConventionallyInsecure", () => {
  it.each<[string, boolean]>([
    ["localhost", true],
    ["localhost:5001", true],
    ["registry.localhost", true],
    ["registry.localhost:5000", true],
    ["127.0.0.1", true],
    ["127.0.0.1:5000", true],
    ["127.1.2.3:80", true],
    ["10.96.0.10:5000", true],
    ["192.168.49.2:5000", true],
    ["172.16.0.1:5000", true],
    ["172.31.255.255", true],
    ["[::1]", true],
    ["[::1]:5000", true],
    ["172.15.0.1:5000", false],
    ["172.32.0.1:5000", false],
    ["192.169.0.1", false],
    ["11.0.0.1", false],
    ["ghcr.io", false],
    ["docker.io", false],
    ["kind-registry:5000", false],
    ["localhost.example.com", false],
    ["mylocalhost", false],
    // Address ranges apply to IPv4 literals, not to DNS names that happen to start like one.
    ["10.example.com", false],
    ["127.registry.example.com:443", false],
    ["192.168.registry.io", false],
  ])("%s → %s", (host, expected) => {
    expect(isConventionallyInsecure(host)).toBe(expected);
  });
});

describe("parseRegistryCredentials", () => {
  it.each<[string, object]>([
    ['{"registry":"r.io","username":"u","password":"p"}', { registry: "r.io", username: "u", password: "p" }],
    ['{"username":"u","password":"p"}', { registry: "", username: "u", password: "p" }],
    ['{"registry":5,"username":"u","password":""}', { registry: "", username: "u", password: "" }],
    ['{"registry":"r.io","username":"u","password":"p","extra":true}', { registry: "r.io", username: "u", password: "p" }],
  ])("parses %s", (json, expected) => {
    expect(parseRegistryCredentials(json)).toEqual(expected);
  });

  it.each<[string, RegExp]>([
    ["", /not valid JSON/],
    ["{", /not valid JSON/],
    ["null", /"username" and "password"/],
    ["[]", /"username" and "password"/],
    ['"u:p"', /"username" and "password"/],
    ['{"username":"u"}', /"username" and "password"/],
    ['{"password":"p"}', /"username" and "password"/],
    ['{"username":1,"password":"p"}', /"username" and "password"/],
  ])("rejects %j", (json, message) => {
    const error = thrown(() => parseRegistryCredentials(json));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(message);
  });

  it("never puts the secret in the message", () => {
    const error = thrown(() => parseRegistryCredentials('{"username":"u","password":"hunter2"'));
    expect(error.message).not.toContain("hunter2");
  });
});

describe("resolveRegistry", () => {
  it.each<[Parameters<typeof resolveRegistry>[0], ReturnType<typeof resolveRegistry>]>([
    [{ host: "localhost:5001" }, { host: "localhost:5001", pushHost: "localhost:5001", apiHost: "localhost:5001", insecure: true, credentialsSecret: null }],
    [
      { host: "localhost:5001", pushHost: "kind-registry:5000" },
      { host: "localhost:5001", pushHost: "kind-registry:5000", apiHost: "localhost:5001", insecure: true, credentialsSecret: null },
    ],
    [
      { host: "registry.ci:5000", apiHost: "127.0.0.1:5000", credentialsSecret: "" },
      { host: "registry.ci:5000", pushHost: "registry.ci:5000", apiHost: "127.0.0.1:5000", insecure: false, credentialsSecret: null },
    ],
    [{ host: "ghcr.io", credentialsSecret: "ghcr" }, { host: "ghcr.io", pushHost: "ghcr.io", apiHost: "ghcr.io", insecure: false, credentialsSecret: "ghcr" }],
    // An explicit `insecure` wins over the convention, both ways.
    [{ host: "ghcr.io", insecure: true }, { host: "ghcr.io", pushHost: "ghcr.io", apiHost: "ghcr.io", insecure: true, credentialsSecret: null }],
    [{ host: "localhost:5001", insecure: false }, { host: "localhost:5001", pushHost: "localhost:5001", apiHost: "localhost:5001", insecure: false, credentialsSecret: null }],
    // insecure follows the host nodes pull from, not the push host.
    [
      { host: "registry.example.com", pushHost: "10.0.0.5:5000" },
      { host: "registry.example.com", pushHost: "10.0.0.5:5000", apiHost: "registry.example.com", insecure: false, credentialsSecret: null },
    ],
  ])("resolves %j", (given, expected) => {
    expect(resolveRegistry(given)).toEqual(expected);
  });

  it.each<[Parameters<typeof resolveRegistry>[0], RegExp]>([
    [{ host: "" }, /^registry\.host ""/],
    [{ host: "https://ghcr.io" }, /^registry\.host/],
    [{ host: "ghcr.io/org" }, /^registry\.host/],
    [{ host: "a b" }, /^registry\.host/],
    [{ host: "r.io", pushHost: "kind registry" }, /^registry\.pushHost/],
    [{ host: "r.io", pushHost: "" }, /^registry\.pushHost ""/],
    [{ host: "r.io", apiHost: "http://r.io" }, /^registry\.apiHost/],
    [{ host: "r.io", apiHost: "r.io\t" }, /^registry\.apiHost/],
  ])("rejects %j", (given, message) => {
    const error = thrown(() => resolveRegistry(given));
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.message).toMatch(message);
  });
});
