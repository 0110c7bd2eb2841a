import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { DEFAULT_SERVICE_CONFIG, parseBytes, resolveServiceConfig } from "../../../src/service/config.js";
import { thrown } from "../../support/thrown.js";

const MiB = 1024 * 1024;

/** The error a call throws (fails the test when it does not throw). */

describe("resolveServiceConfig defaults", () => {
  it.each([undefined, null, {}])("%j → the defaults", (doc) => {
    expect(resolveServiceConfig(doc, {})).toEqual(DEFAULT_SERVICE_CONFIG);
  });

  it("has the documented defaults", () => {
    expect(DEFAULT_SERVICE_CONFIG).toEqual({
      host: "0.0.0.0",
      port: 8585,
      baseUrl: "/",
      imagePrefix: "binder/",
      providers: { gh: { baseUrl: "https://github.com" }, gl: { baseUrl: "https://gitlab.com" }, enabled: ["gh", "gl", "git"] },
      urls: { allowedSchemes: ["https", "http"], allowedHosts: ["github.com", "gitlab.com"], allowedCidrs: [], blockedCidrs: [], blockedEndpoints: [] },
      tokensDir: null,
      corsOrigins: [],
      limits: {
        maxRunning: 4,
        maxPerRepository: 1,
        maxQueued: 100,
        maxRepoBytes: 1024 * MiB,
        buildTimeoutSeconds: 3600,
        concurrentBuildsPerToken: 4,
        buildsPerTokenPerHour: 60,
      },
      runner: {
        image: null,
        command: ["/usr/bin/tini", "--", "python", "-m", "repo2docker_kce.runner"],
        serviceAccountName: "kce-runner",
        ttlSecondsAfterFinished: 600,
        userName: "jovyan",
        userId: 1000,
        resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } },
        env: {},
        warmSpares: 1,
        spareMaxWaitSeconds: 600,
      },
      hub: { publicUrl: null, launchTimeoutSeconds: 300, tokenExpiresSeconds: 86_400 },
      lingerSeconds: 60,
    });
  });

  it("keeps the defaults of a section's other keys when one key is set", () => {
    const config = resolveServiceConfig({ limits: { maxRunning: 9 }, runner: { resources: { limits: { memory: "2Gi" } } }, urls: { allowedHosts: ["*"] } });
    expect(config.limits).toEqual({ ...DEFAULT_SERVICE_CONFIG.limits, maxRunning: 9 });
    expect(config.runner.resources).toEqual({ requests: DEFAULT_SERVICE_CONFIG.runner.resources.requests, limits: { memory: "2Gi" } });
    expect(config.urls).toEqual({ ...DEFAULT_SERVICE_CONFIG.urls, allowedHosts: ["*"] });
  });
});

describe("resolveServiceConfig values", () => {
  it("takes every key of a full document", () => {
    const doc = {
      host: "127.0.0.1",
      port: 9000,
      baseUrl: "/services/binder/",
      imagePrefix: "registry.example.org/binder-",
      providers: { enabled: ["git"], gh: { baseUrl: "https://ghe.example.org" }, gl: { baseUrl: "http://gitlab.internal:8080" } },
      urls: {
        allowedSchemes: ["https"],
        allowedHosts: ["*.example.org"],
        allowedCidrs: ["10.0.0.0/8"],
        blockedCidrs: ["100.64.0.0/10"],
        blockedEndpoints: ["10.96.0.1:443"],
      },
      tokensDir: "/etc/kce-service/tokens",
      corsOrigins: ["https://hub.example.org"],
      limits: {
        maxRunning: 8,
        maxPerRepository: 2,
        maxQueued: 10,
        maxRepoBytes: "512Mi",
        buildTimeoutSeconds: 600,
        concurrentBuildsPerToken: 3,
        buildsPerTokenPerHour: 20,
      },
      runner: {
        image: "registry.example.org/kce:1",
        command: ["python", "-m", "runner"],
        serviceAccountName: "builder",
        ttlSecondsAfterFinished: 60,
        userName: "user",
        userId: 1001,
        resources: { requests: { cpu: "1" }, limits: { cpu: "2", memory: "4Gi" } },
        env: { KCE_BUILDER: "buildkit" },
        warmSpares: 0,
        spareMaxWaitSeconds: 120,
      },
      hub: { publicUrl: "https://hub.example.org/", launchTimeoutSeconds: 60, tokenExpiresSeconds: 600 },
      lingerSeconds: 0,
    };
    expect(resolveServiceConfig(doc, {})).toEqual({
      ...doc,
      providers: { enabled: ["git"], gh: { baseUrl: "https://ghe.example.org" }, gl: { baseUrl: "http://gitlab.internal:8080" } },
      limits: { ...doc.limits, maxRepoBytes: 512 * MiB },
    });
  });

  it.each<[Record<string, string>, Record<string, unknown>]>([
    [{ KCE_SERVICE_PORT: "9001" }, { port: 9001 }],
    [{ KCE_SERVICE_TOKENS_DIR: "/tokens" }, { tokensDir: "/tokens" }],
    [{ KCE_SERVICE_RUNNER_IMAGE: "example.org/runner:2" }, { runnerImage: "example.org/runner:2" }],
    [{ JUPYTERHUB_SERVICE_PREFIX: "/services/binder" }, { baseUrl: "/services/binder/" }],
    [{ KCE_SERVICE_IMAGE: "ignored", OTHER: "x" }, {}],
  ])("the environment %j overrides the document", (env, expected) => {
    const doc = { port: 9000, tokensDir: "/doc-tokens", baseUrl: "/doc/", runner: { image: "doc/runner:1" } };
    const config = resolveServiceConfig(doc, env);
    expect({ port: config.port, tokensDir: config.tokensDir, runnerImage: config.runner.image, baseUrl: config.baseUrl }).toEqual({
      port: 9000,
      tokensDir: "/doc-tokens",
      runnerImage: "doc/runner:1",
      baseUrl: "/doc/",
      ...expected,
    });
  });

  it.each([
    ["/", "/"],
    ["", "/"],
    ["//", "/"],
    ["services/binder", "/services/binder/"],
    ["/services/binder", "/services/binder/"],
    ["/services/binder/", "/services/binder/"],
    ["//services/binder//", "/services/binder/"],
    ["  /binder  ", "/binder/"],
  ])("baseUrl %j → %j", (baseUrl, expected) => {
    expect(resolveServiceConfig({ baseUrl }).baseUrl).toBe(expected);
    expect(resolveServiceConfig({}, { JUPYTERHUB_SERVICE_PREFIX: baseUrl }).baseUrl).toBe(expected);
  });

  it.each([
    [{ port: 1 }, 1],
    [{ port: 65535 }, 65535],
  ])("port %j", (doc, port) => {
    expect(resolveServiceConfig(doc).port).toBe(port);
  });
});

describe("resolveServiceConfig errors name their key", () => {
  it.each<[string, unknown, Record<string, string>?]>([
    ["(document)", []],
    ["(document)", "port: 1"],
    ["(document)", 3],
    ["port", { port: 0 }],
    ["port", { port: 65536 }],
    ["port", { port: "8080" }],
    ["port", { port: 80.5 }],
    ["port", {}, { KCE_SERVICE_PORT: "http" }],
    ["port", {}, { KCE_SERVICE_PORT: "0" }],
    ["port", {}, { KCE_SERVICE_PORT: "70000" }],
    ["host", { host: 1 }],
    ["baseUrl", { baseUrl: ["/"] }],
    ["imagePrefix", { imagePrefix: null }],
    ["tokensDir", { tokensDir: 5 }],
    ["corsOrigins", { corsOrigins: "https://hub.example.org" }],
    ["corsOrigins", { corsOrigins: [1] }],
    ["lingerSeconds", { lingerSeconds: -1 }],
    ["lingerSeconds", { lingerSeconds: "60" }],
    ["providers", { providers: ["gh"] }],
    ["providers.enabled", { providers: { enabled: "gh" } }],
    ["providers.enabled", { providers: { enabled: ["gh", "bitbucket"] } }],
    ["providers.gh", { providers: { gh: "https://github.com" } }],
    ["providers.gh.baseUrl", { providers: { gh: { baseUrl: "github.com" } } }],
    ["providers.gh.baseUrl", { providers: { gh: { baseUrl: 1 } } }],
    ["providers.gl", { providers: { gl: [] } }],
    ["providers.gl.baseUrl", { providers: { gl: { baseUrl: "ftp://gitlab.com" } } }],
    ["providers.gl.baseUrl", { providers: { gl: { baseUrl: "https://" } } }],
    ["urls", { urls: [] }],
    ["urls.allowedSchemes", { urls: { allowedSchemes: "https" } }],
    ["urls.allowedHosts", { urls: { allowedHosts: [1] } }],
    ["urls.allowedCidrs", { urls: { allowedCidrs: "10.0.0.0/8" } }],
    ["urls.blockedCidrs", { urls: { blockedCidrs: {} } }],
    ["urls.blockedEndpoints", { urls: { blockedEndpoints: [443] } }],
    ["limits", { limits: "none" }],
    ["limits.maxRunning", { limits: { maxRunning: 0 } }],
    ["limits.maxRunning", { limits: { maxRunning: 1.5 } }],
    ["limits.maxRunning", { limits: { maxRunning: "4" } }],
    ["limits.maxPerRepository", { limits: { maxPerRepository: -1 } }],
    ["limits.maxQueued", { limits: { maxQueued: null } }],
    ["limits.maxRepoBytes", { limits: { maxRepoBytes: "1 TB" } }],
    ["limits.maxRepoBytes", { limits: { maxRepoBytes: 0 } }],
    ["limits.maxRepoBytes", { limits: { maxRepoBytes: "0" } }],
    ["limits.buildTimeoutSeconds", { limits: { buildTimeoutSeconds: 0 } }],
    ["limits.concurrentBuildsPerToken", { limits: { concurrentBuildsPerToken: true } }],
    ["limits.buildsPerTokenPerHour", { limits: { buildsPerTokenPerHour: 0 } }],
    ["runner", { runner: 1 }],
    ["runner.image", { runner: { image: 1 } }],
    ["runner.command", { runner: { command: "python -m runner" } }],
    ["runner.serviceAccountName", { runner: { serviceAccountName: false } }],
    ["runner.ttlSecondsAfterFinished", { runner: { ttlSecondsAfterFinished: 0 } }],
    ["runner.userName", { runner: { userName: 1000 } }],
    ["runner.userId", { runner: { userId: 0 } }],
    ["runner.userId", { runner: { userId: "1000" } }],
    ["runner.resources", { runner: { resources: [] } }],
    ["runner.resources.requests", { runner: { resources: { requests: { cpu: 1 } } } }],
    ["runner.resources.limits", { runner: { resources: { limits: "1Gi" } } }],
    ["runner.env", { runner: { env: { KCE_BUILDER: 1 } } }],
    ["runner.warmSpares", { runner: { warmSpares: -1 } }],
    ["hub.publicUrl", { hub: { publicUrl: "hub.example.org" } }],
    ["hub.launchTimeoutSeconds", { hub: { launchTimeoutSeconds: 0 } }],
    ["runner.spareMaxWaitSeconds", { runner: { spareMaxWaitSeconds: 0 } }],
    ["runner.env", { runner: { env: ["KCE_BUILDER=buildkit"] } }],
  ])("%s: %j", (key, doc, env = {}) => {
    const err = thrown(() => resolveServiceConfig(doc, env));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(new RegExp(`^service config: ${key.replace(/[.()]/g, "\\$&")} must be .+ \\(got .*\\)$`));
  });

  it("quotes the offending value", () => {
    expect(thrown(() => resolveServiceConfig({ limits: { maxRunning: "four" } })).message).toBe(
      'service config: limits.maxRunning must be a positive integer (got "four")',
    );
  });
});

describe("parseBytes", () => {
  it.each<[unknown, number]>([
    [1, 1],
    [1048576, MiB],
    ["1", 1],
    ["512", 512],
    ["1Ki", 1024],
    ["512Mi", 512 * MiB],
    ["2Gi", 2 * 1024 * MiB],
    ["1K", 1000],
    ["100M", 100_000_000],
    ["3G", 3_000_000_000],
    [" 64 Mi ", 64 * MiB],
    ["0010Mi", 10 * MiB],
  ])("%j → %d", (value, bytes) => {
    expect(parseBytes(value, "limits.maxRepoBytes")).toBe(bytes);
  });

  it.each<unknown>([0, -1, 1.5, "0", "0Mi", "-1Mi", "1.5Gi", "1 TB", "1Ti", "1mi", "1gb", "Mi", "", null, undefined, true, ["1Gi"], { value: 1 }])(
    "%j is refused, naming the key",
    (value) => {
      const err = thrown(() => parseBytes(value, "some.key"));
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.message).toBe(`service config: some.key must be a size such as "512Mi" or a number of bytes (got ${JSON.stringify(value)})`);
    },
  );
});
