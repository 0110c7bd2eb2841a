import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { UsageError, type EngineFlags, type GlobalFlags } from "../../../src/cli/args.js";
import { engineOptions, readConfigFile, type ConfigFile } from "../../../src/cli/settings.js";

let dir: string;
/** A kubeconfig with two contexts, `dev` (current, namespace dev) and `prod` (namespace prod). */
let kubeconfig: string;
/** Another kubeconfig whose only context is `other`. */
let otherKubeconfig: string;

function kubeconfigYaml(contexts: { name: string; namespace: string }[], current: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: local",
    "  cluster:",
    "    server: https://127.0.0.1:6443",
    "    insecure-skip-tls-verify: true",
    "users:",
    "- name: me",
    "  user:",
    "    token: not-a-real-token",
    "contexts:",
    ...contexts.flatMap((c) => [`- name: ${c.name}`, "  context:", "    cluster: local", "    user: me", `    namespace: ${c.namespace}`]),
    `current-context: ${current}`,
    "",
  ].join("\n");
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  return path;
}

const flags = (extra: Partial<GlobalFlags> = {}): GlobalFlags => ({ json: false, quiet: false, ...extra });

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error("expected a UsageError");
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kce-settings-"));
  kubeconfig = write(
    "kubeconfig.yaml",
    kubeconfigYaml(
      [
        { name: "dev", namespace: "dev" },
        { name: "prod", namespace: "prod" },
      ],
      "dev",
    ),
  );
  otherKubeconfig = write("other-kubeconfig.yaml", kubeconfigYaml([{ name: "other", namespace: "other" }], "other"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("readConfigFile", () => {
  it("returns {} when the default file does not exist", () => {
    const home = join(dir, "empty-home");
    mkdirSync(home, { recursive: true });
    expect(readConfigFile(flags(), { HOME: home })).toEqual({});
  });

  it("reads ~/.config/kce/config.yaml by default", () => {
    const home = join(dir, "home");
    write("home/.config/kce/config.yaml", "namespace: from-home\nbuilder: buildkit\n");
    expect(readConfigFile(flags(), { HOME: home })).toEqual({ namespace: "from-home", builder: "buildkit" });
  });

  it.each<[string, (path: string) => [GlobalFlags, Record<string, string>]]>([
    ["--config", (path) => [flags({ config: path }), {}]],
    ["$KCE_CONFIG", (path) => [flags(), { KCE_CONFIG: path }]],
    ["--config over $KCE_CONFIG", (path) => [flags({ config: path }), { KCE_CONFIG: join(dir, "missing.yaml") }]],
  ])("reads the file named by %s", (_name, args) => {
    const path = write("named.yaml", "registry:\n  host: localhost:5001\n  pushHost: kind-registry:5000\ntimeouts:\n  buildSeconds: 60\n");
    const [f, env] = args(path);
    expect(readConfigFile(f, { HOME: join(dir, "nowhere"), ...env })).toEqual({
      registry: { host: "localhost:5001", pushHost: "kind-registry:5000" },
      timeouts: { buildSeconds: 60 },
    });
  });

  it.each<[string, (path: string) => [GlobalFlags, Record<string, string>]]>([
    ["--config", (path) => [flags({ config: path }), {}]],
    ["$KCE_CONFIG", (path) => [flags(), { KCE_CONFIG: path }]],
  ])("a missing file named by %s is a usage error", (_name, args) => {
    const missing = join(dir, "does-not-exist.yaml");
    const [f, env] = args(missing);
    const error = usageError(() => readConfigFile(f, env));
    expect(error.message).toBe(`config file ${missing} does not exist`);
    expect(error.command).toBeNull();
  });

  it.each<[string, string, RegExp]>([
    ["invalid YAML", "namespace: [unclosed\n", /is not valid YAML: /],
    ["duplicate keys", "namespace: a\nnamespace: b\n", /is not valid YAML: /],
    ["two documents", "namespace: a\n---\nnamespace: b\n", /is not valid YAML: expected one YAML document, found 2/],
    ["a list", "- namespace: a\n", /must be a mapping$/],
    ["a scalar", "just text\n", /must be a mapping$/],
    ["a number", "42\n", /must be a mapping$/],
  ])("rejects %s", (_name, text, message) => {
    const path = write("bad.yaml", text);
    const error = usageError(() => readConfigFile(flags({ config: path }), {}));
    expect(error.message).toMatch(message);
    expect(error.message).toContain(path);
  });

  it.each([
    ["an empty file", ""],
    ["only comments", "# kce config\n"],
    ["null", "null\n"],
  ])("treats %s as no settings", (_name, text) => {
    const path = write("empty.yaml", text);
    expect(readConfigFile(flags({ config: path }), {})).toEqual({});
  });
});

describe("engineOptions", () => {
  describe("kubeconfig", () => {
    it.each<[string, () => [GlobalFlags, ConfigFile, Record<string, string>], string]>([
      ["--kubeconfig", () => [flags({ kubeconfig }), {}, {}], "dev"],
      ["the file's kubeconfig", () => [flags(), { kubeconfig: otherKubeconfig }, {}], "other"],
      ["--kubeconfig over the file's", () => [flags({ kubeconfig }), { kubeconfig: otherKubeconfig }, {}], "dev"],
      ["--kubeconfig over $KUBECONFIG", () => [flags({ kubeconfig }), {}, { KUBECONFIG: otherKubeconfig }], "dev"],
      // $KUBECONFIG (read by the client's loadFromDefault) beats the file's.
      ["$KUBECONFIG over the file's", () => [flags(), { kubeconfig: otherKubeconfig }, { KUBECONFIG: kubeconfig }], "dev"],
      ["$KUBECONFIG", () => [flags(), {}, { KUBECONFIG: otherKubeconfig }], "other"],
    ])("loads %s", (_name, args, context) => {
      const [f, file, env] = args();
      vi.stubEnv("KUBECONFIG", env.KUBECONFIG ?? kubeconfig);
      const options = engineOptions(f, file, env);
      expect(options.kubeConfig?.getCurrentContext()).toBe(context);
      expect(options.kubeConfig?.getCurrentCluster()?.server).toBe("https://127.0.0.1:6443");
      expect(options.kubeConfig?.getCurrentUser()?.token).toBe("not-a-real-token");
    });

    it("a kubeconfig that cannot be loaded is a usage error", () => {
      const missing = join(dir, "no-kubeconfig");
      const error = usageError(() => engineOptions(flags({ kubeconfig: missing }), {}, {}));
      expect(error.message).toMatch(new RegExp(`^cannot load kubeconfig ${missing}: `));
    });
  });

  describe("context", () => {
    it.each<[string, GlobalFlags, ConfigFile, string]>([
      ["the kubeconfig's current context", flags(), {}, "dev"],
      ["--context", flags({ context: "prod" }), {}, "prod"],
      ["the file's context", flags(), { context: "prod" }, "prod"],
      ["--context over the file's", flags({ context: "dev" }), { context: "prod" }, "dev"],
    ])("uses %s", (_name, f, file, context) => {
      const options = engineOptions({ ...f, kubeconfig }, file, {});
      expect(options.kubeConfig?.getCurrentContext()).toBe(context);
      expect(options.kubeConfig?.getContextObject(context)?.namespace).toBe(context);
    });

    it.each<[string, GlobalFlags, ConfigFile]>([
      ["--context", flags({ kubeconfig, context: "staging" }), {}],
      ["the file's context", flags({ kubeconfig }), { context: "staging" }],
    ])("an unknown %s is a usage error", (_name, f, file) => {
      expect(usageError(() => engineOptions(f, file, {})).message).toBe('context "staging" is not in the kubeconfig');
    });
  });

  describe("precedence: flags > environment > file", () => {
    const fileRegistry = { host: "file-registry:5000", pushHost: "file-push:5000" };
    it.each<[string, Partial<GlobalFlags>, Record<string, string>, ConfigFile, Record<string, unknown>]>([
      // namespace
      ["namespace from the flag", { namespace: "flag" }, { KCE_NAMESPACE: "env" }, { namespace: "file" }, { namespace: "flag" }],
      ["namespace from the environment", {}, { KCE_NAMESPACE: "env" }, { namespace: "file" }, { namespace: "env" }],
      ["namespace from the file", {}, {}, { namespace: "file" }, { namespace: "file" }],
      ["no namespace: the engine uses the context's", {}, {}, {}, { namespace: undefined }],
      // builder
      ["builder from the flag", { builder: "kaniko" }, { KCE_BUILDER: "buildkit" }, { builder: "buildkit" }, { builder: "kaniko" }],
      ["builder from the environment", {}, { KCE_BUILDER: "buildkit" }, { builder: "kaniko" }, { builder: "buildkit" }],
      ["builder from the file", {}, {}, { builder: "buildkit" }, { builder: "buildkit" }],
      ["no builder: the engine's default", {}, {}, {}, { builder: undefined }],
      // registry
      ["--registry names one address for everything", { registry: "flag:5000" }, { KCE_REGISTRY: "env:5000" }, { registry: fileRegistry }, { registry: { host: "flag:5000" } }],
      // The engine reads KCE_REGISTRY(_PUSH) itself; the file must not shadow it.
      ["KCE_REGISTRY leaves the registry to the engine", {}, { KCE_REGISTRY: "env:5000" }, { registry: fileRegistry }, { registry: undefined }],
      ["the file's registry when nothing else is set", {}, { KCE_REGISTRY_PUSH: "env-push:5000" }, { registry: fileRegistry }, { registry: fileRegistry }],
      ["no registry: the engine reads the cluster's ConfigMap", {}, {}, {}, { registry: undefined }],
    ])("%s", (_name, f, env, file, expected) => {
      const options = engineOptions(flags({ kubeconfig, ...f }), file, env);
      for (const [key, value] of Object.entries(expected)) {
        if (value === undefined) expect(options).not.toHaveProperty(key);
        else expect(options[key as keyof typeof options]).toEqual(value);
      }
    });

    // --buildkit-mode / --insecure-registry (build and push): the engine reads KCE_BUILDKIT_MODE and
    // KCE_INSECURE_REGISTRIES itself, so the file's value applies only when those are unset.
    it.each<[string, EngineFlags, Record<string, string>, ConfigFile, Record<string, unknown>]>([
      ["buildkitMode from the flag", { buildkitMode: "privileged" }, { KCE_BUILDKIT_MODE: "rootless" }, { buildkitMode: "auto" }, { buildkitMode: "privileged" }],
      ["KCE_BUILDKIT_MODE leaves the mode to the engine", {}, { KCE_BUILDKIT_MODE: "rootless" }, { buildkitMode: "privileged" }, { buildkitMode: undefined }],
      ["buildkitMode from the file", {}, {}, { buildkitMode: "rootless" }, { buildkitMode: "rootless" }],
      ["no buildkitMode: the engine's default", {}, {}, {}, { buildkitMode: undefined }],
      [
        "insecureRegistries from the flags (replacing the environment's)",
        { insecureRegistries: ["a:5000", "b:5001"] },
        { KCE_INSECURE_REGISTRIES: "env:5001" },
        { insecureRegistries: ["file:5000"] },
        { insecureRegistries: ["a:5000", "b:5001"] },
      ],
      ["KCE_INSECURE_REGISTRIES leaves the list to the engine", {}, { KCE_INSECURE_REGISTRIES: "env:5001" }, { insecureRegistries: ["file:5000"] }, { insecureRegistries: undefined }],
      ["insecureRegistries from the file", {}, {}, { insecureRegistries: ["file:5000"] }, { insecureRegistries: ["file:5000"] }],
      ["contextCompression from the flag", { contextCompression: 0 }, { KCE_CONTEXT_COMPRESSION: "6" }, { contextCompression: 9 }, { contextCompression: 0 }],
      ["KCE_CONTEXT_COMPRESSION leaves it to the engine", {}, { KCE_CONTEXT_COMPRESSION: "6" }, { contextCompression: 9 }, { contextCompression: undefined }],
      ["contextCompression from the file", {}, {}, { contextCompression: "none" }, { contextCompression: "none" }],
    ])("%s", (_name, engine, env, file, expected) => {
      const options = engineOptions(flags({ kubeconfig }), file, env, engine);
      for (const [key, value] of Object.entries(expected)) {
        if (value === undefined) expect(options).not.toHaveProperty(key);
        else expect(options[key as keyof typeof options]).toEqual(value);
      }
    });

    it("passes the file's other settings through", () => {
      const file: ConfigFile = {
        builderImages: { kaniko: "mirror/kaniko:1" },
        timeouts: { buildSeconds: 120, runSeconds: 0 },
        labels: { team: "data" },
        serviceAccountName: "kce",
        nodeSelector: { "kubernetes.io/arch": "amd64" },
      };
      const options = engineOptions(flags({ kubeconfig }), file, {});
      expect(options).toMatchObject(file);
      expect(Object.keys(options).sort()).toEqual(
        ["builderImages", "kubeConfig", "labels", "nodeSelector", "serviceAccountName", "timeouts"].sort(),
      );
    });

    it("sets nothing but the kubeconfig when nothing is configured", () => {
      expect(Object.keys(engineOptions(flags({ kubeconfig }), {}, {}))).toEqual(["kubeConfig"]);
    });
  });
});
