import { describe, expect, it } from "vitest";
import {
  COMMANDS,
  GLOBAL_USAGE,
  parseCommandLine,
  parseDuration,
  parseKeyValues,
  UsageError,
  type CommandName,
  type ParsedCommand,
} from "../../../src/cli/args.js";

/** The UsageError a call throws (fails the test when it throws nothing or something else). */
function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error("expected a UsageError");
}

const split = (line: string): string[] => (line === "" ? [] : line.split(" "));

describe("parseCommandLine: accepted shapes", () => {
  it.each<[string, Partial<ParsedCommand>]>([
    // build
    ["build . -t img", { command: "build", positionals: ["."], flags: expect.objectContaining({ tag: "img", push: false, "no-load": false }) }],
    ["build -t img dir", { command: "build", positionals: ["dir"], flags: expect.objectContaining({ tag: "img" }) }],
    ["build --tag=img:1 ctx", { command: "build", positionals: ["ctx"], flags: expect.objectContaining({ tag: "img:1" }) }],
    ["build - -t img", { command: "build", positionals: ["-"], flags: expect.objectContaining({ tag: "img" }) }],
    [
      "build . -t img -f docker/Dockerfile --build-arg A=1 --build-arg B --label x=y --cache-from c1 --cache-from c2 --platform linux/arm64 --push --no-load --memory 2g",
      {
        command: "build",
        flags: {
          tag: "img",
          file: "docker/Dockerfile",
          "build-arg": ["A=1", "B"],
          label: ["x=y"],
          "cache-from": ["c1", "c2"],
          platform: "linux/arm64",
          push: true,
          "no-load": true,
          memory: "2g",
        },
      },
    ],
    // run
    ["run img", { command: "run", positionals: ["img"], rest: [], flags: { publish: undefined, env: undefined, rm: false, user: undefined, detach: false } }],
    [
      "run -p 8888:8888 -p 127.0.0.1:9000:9000 -e A=1 -e B --rm -u 1000 -d img",
      {
        command: "run",
        positionals: ["img"],
        flags: { publish: ["8888:8888", "127.0.0.1:9000:9000"], env: ["A=1", "B"], rm: true, user: "1000", detach: true },
      },
    ],
    ["run img -- python -m http.server", { command: "run", positionals: ["img"], rest: ["python", "-m", "http.server"] }],
    // Flags after "--" belong to the container command, not to kce.
    ["run img -- sh -c --help -t x", { command: "run", positionals: ["img"], rest: ["sh", "-c", "--help", "-t", "x"], help: false }],
    ["run img -- sh -- x", { command: "run", rest: ["sh", "--", "x"] }],
    ["run img --", { command: "run", positionals: ["img"], rest: [] }],
    // the rest
    ["inspect localhost:5001/img:1", { command: "inspect", positionals: ["localhost:5001/img:1"], flags: {} }],
    ["images", { command: "images", positionals: [], flags: {} }],
    ["push img", { command: "push", positionals: ["img"], engine: {}, flags: {} }],
    // --buildkit-mode, --insecure-registry (build and push): checked into `engine`, not left in `flags`
    ["build . -t img", { engine: {} }],
    [
      "build . -t img --builder buildkit --buildkit-mode privileged --insecure-registry 10.0.0.5:5001 --insecure-registry reg.local",
      {
        global: expect.objectContaining({ builder: "buildkit" }),
        engine: { buildkitMode: "privileged", insecureRegistries: ["10.0.0.5:5001", "reg.local"] },
        flags: expect.not.objectContaining({ "buildkit-mode": expect.anything() }),
      },
    ],
    ["build . -t img --buildkit-mode=rootless", { engine: { buildkitMode: "rootless" } }],
    ["build . -t img --compress 6", { engine: { contextCompression: 6 }, flags: expect.not.objectContaining({ compress: expect.anything() }) }],
    ["build . -t img --compress none", { engine: { contextCompression: 0 } }],
    ["build . -t img --compress=auto", { engine: { contextCompression: "auto" } }],
    ["build . -t img --buildkit-mode auto", { engine: { buildkitMode: "auto" } }],
    ["build . -t img --insecure-registry a:1 --insecure-registry a:1", { engine: { insecureRegistries: ["a:1"] } }],
    [
      "push img --buildkit-mode privileged --insecure-registry 192.0.2.2:5001",
      { command: "push", positionals: ["img"], engine: { buildkitMode: "privileged", insecureRegistries: ["192.0.2.2:5001"] }, flags: {} },
    ],
    ["images", { engine: {} }],
    ["gc", { command: "gc", flags: { "older-than": undefined, "dry-run": false, all: false } }],
    ["gc --older-than 1h --all --dry-run", { command: "gc", flags: { "older-than": "1h", "dry-run": true, all: true } }],
    ["version", { command: "version", help: false }],
  ])("%s", (line, expected) => {
    expect(parseCommandLine(split(line))).toMatchObject(expected);
  });

  it("keeps only the command's own flags in `flags`", () => {
    const cmd = parseCommandLine(split("images -n ns --json"));
    expect(cmd.flags).toEqual({});
    expect(cmd.global.namespace).toBe("ns");
  });
});

describe("parseCommandLine: global flags", () => {
  it.each<[string, Partial<ParsedCommand["global"]>]>([
    ["images", { json: false, quiet: false, namespace: undefined, builder: undefined }],
    ["images -n ns", { namespace: "ns" }],
    ["images --namespace=ns", { namespace: "ns" }],
    [
      "images --context kind-kce --kubeconfig /tmp/kc --registry localhost:5001 --config /tmp/c.yaml --json -q",
      { context: "kind-kce", kubeconfig: "/tmp/kc", registry: "localhost:5001", config: "/tmp/c.yaml", json: true, quiet: true },
    ],
    ["build . -t x --builder buildkit", { builder: "buildkit" }],
    ["build . -t x --builder=kaniko", { builder: "kaniko" }],
    // Before the command, too — including flags that take a value as the next word.
    ["--json images", { json: true }],
    ["-q --json images", { json: true, quiet: true }],
    ["-n ns images", { namespace: "ns" }],
    ["--namespace ns images", { namespace: "ns" }],
    ["--context ctx -n images images", { context: "ctx", namespace: "images" }],
    ["--kubeconfig /tmp/kc --registry r:5000 --builder buildkit --config c.yaml gc", {
      kubeconfig: "/tmp/kc",
      registry: "r:5000",
      builder: "buildkit",
      config: "c.yaml",
    }],
  ])("%s", (line, expected) => {
    expect(parseCommandLine(split(line)).global).toMatchObject(expected);
  });

  it("finds the command after a global flag's value", () => {
    const cmd = parseCommandLine(split("-n dev build . -t img"));
    expect(cmd.command).toBe("build");
    expect(cmd.positionals).toEqual(["."]);
    expect(cmd.global.namespace).toBe("dev");
  });
});

describe("parseCommandLine: help", () => {
  it.each<[string, CommandName]>([
    ["", "version"],
    ["--help", "version"],
    ["-h", "version"],
    ["--json --help", "version"],
    ["build --help", "build"],
    // Help needs neither the positionals nor -t.
    ["build -h", "build"],
    ["run --help", "run"],
    ["gc -h", "gc"],
    ["-h images", "images"],
  ])("%j → help for %s", (line, command) => {
    const cmd = parseCommandLine(split(line));
    expect(cmd.help).toBe(true);
    expect(cmd.command).toBe(command);
  });

  it("documents every command", () => {
    for (const name of Object.keys(COMMANDS)) expect(GLOBAL_USAGE).toContain(name);
    for (const [name, spec] of Object.entries(COMMANDS)) expect(spec.usage).toMatch(new RegExp(`^kce ${name}`));
  });
});

describe("parseCommandLine: usage errors (the CLI exits 2)", () => {
  it.each<[string, RegExp, CommandName | null]>([
    // commands
    ["frobnicate", /unknown command "frobnicate"/, null],
    ["frobnicate --help", /unknown command "frobnicate"/, null],
    ["Build . -t x", /unknown command "Build"/, null],
    ["--json", /no command given/, null],
    ["-n ns", /no command given/, null],
    ["-- build", /no command given/, null],
    // flags
    ["images --bogus", /bogus/, "images"],
    ["images -x", /-x/, "images"],
    ["build . -t x --tag-typo y", /tag-typo/, "build"],
    ["gc --rm", /rm/, "gc"],
    ["run img --push", /push/, "run"],
    ["build . -t", /-t/, "build"],
    ["build . -t -x", /ambiguous|-t/, "build"],
    ["images --json=yes", /json/, "images"],
    ["images -n", /-n|namespace/, "images"],
    // positionals
    ["build -t x", /build needs 1 argument$/, "build"],
    ["build a b -t x", /build: unexpected argument "b"/, "build"],
    ["run", /run needs 1 argument/, "run"],
    ["run -- sh", /run needs 1 argument/, "run"],
    ["run a b", /run: unexpected argument "b"/, "run"],
    ["inspect", /inspect needs 1 argument/, "inspect"],
    ["push", /push needs 1 argument/, "push"],
    ["images extra", /images: unexpected argument "extra"/, "images"],
    ["gc 1h", /gc: unexpected argument "1h"/, "gc"],
    ["version 2", /version: unexpected argument "2"/, "version"],
    // "--" is only for run
    ["build . -t x -- y", /"--" is only allowed for run/, "build"],
    ["images -- x", /"--" is only allowed for run/, "images"],
    // build needs -t
    ["build .", /build needs -t <tag>/, "build"],
    ["build . --push", /build needs -t <tag>/, "build"],
    // --builder
    ["build . -t x --builder docker", /--builder must be kaniko, buildkit or buildkit-pool, not "docker"/, "build"],
    ["--builder Kaniko images", /--builder must be kaniko, buildkit or buildkit-pool/, "images"],
    ["images --builder=", /--builder must be kaniko, buildkit or buildkit-pool, not ""/, "images"],
    // --buildkit-mode, --insecure-registry
    ["build . -t x --buildkit-mode rootful", /--buildkit-mode must be auto, rootless or privileged, not "rootful"/, "build"],
    ["build . -t x --compress fast", /--compress must be "auto", "none" or a gzip level 0–9, not "fast"/, "build"],
    ["push img --buildkit-mode=", /--buildkit-mode must be auto, rootless or privileged, not ""/, "push"],
    ["build . -t x --buildkit-mode", /buildkit-mode/, "build"],
    ["build . -t x --insecure-registry http://reg:5000", /--insecure-registry "http:\/\/reg:5000": expected HOST\[:PORT\]/, "build"],
    ["push img --insecure-registry reg:5000/path", /--insecure-registry "reg:5000\/path"/, "push"],
    ["push img --insecure-registry=", /--insecure-registry "": expected HOST/, "push"],
    ["run img --buildkit-mode privileged", /buildkit-mode/, "run"],
    ["images --insecure-registry reg:5000", /insecure-registry/, "images"],
  ])("%j → %s", (line, message, command) => {
    const error = usageError(() => parseCommandLine(split(line)));
    expect(error.message).toMatch(message);
    expect(error.command).toBe(command);
    expect(error.name).toBe("UsageError");
  });
});

describe("parseKeyValues", () => {
  it.each<[string[] | undefined, Record<string, string>]>([
    [undefined, {}],
    [[], {}],
    [["A=1"], { A: "1" }],
    [["A=1", "B=2"], { A: "1", B: "2" }],
    [["A="], { A: "" }],
    [["A=b=c"], { A: "b=c" }],
    [["A=1", "A=2"], { A: "2" }],
    [["PATH=/usr/bin:/bin"], { PATH: "/usr/bin:/bin" }],
    [["A= spaced value "], { A: " spaced value " }],
  ])("%j → %j", (items, expected) => {
    expect(parseKeyValues("label", items)).toEqual(expected);
    // With an environment, KEY=VALUE items are unchanged.
    expect(parseKeyValues("env", items, { A: "from-env" })).toEqual(expected);
  });

  it.each<[string, string[]]>([
    ["label", ["A"]],
    ["label", ["=x"]],
    ["label", [""]],
    ["build-arg", ["A=1", "B"]],
  ])("--%s %j without an environment is a usage error naming the flag", (flag, items) => {
    const error = usageError(() => parseKeyValues(flag, items));
    expect(error.message).toMatch(new RegExp(`^--${flag} ".*": expected KEY=VALUE$`));
    expect(error.command).toBeNull();
  });

  it.each<[string[], Record<string, string | undefined>, Record<string, string>]>([
    [["HOME"], { HOME: "/home/me" }, { HOME: "/home/me" }],
    [["MISSING"], {}, { MISSING: "" }],
    [["EMPTY"], { EMPTY: "" }, { EMPTY: "" }],
    [["A", "B=2", "C"], { A: "a", C: "c" }, { A: "a", B: "2", C: "c" }],
  ])("takes bare %j from the environment", (items, env, expected) => {
    expect(parseKeyValues("env", items, env)).toEqual(expected);
  });

  it.each([[["=x"]], [[""]]])("still rejects %j with an environment", (items) => {
    expect(() => parseKeyValues("env", items, { "": "x" })).toThrow(/--env .*expected KEY=VALUE/);
  });
});

describe("parseDuration", () => {
  it.each<[string, number]>([
    ["0s", 0],
    ["90s", 90],
    ["15m", 900],
    ["2h", 7200],
    ["1d", 86400],
    ["7d", 604800],
    ["001m", 60],
  ])("%s → %d s", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(["", "90", "1.5h", "-1h", "1w", "1H", " 1h", "1h ", "1h30m", "h", "1 h", "1e3s"])("rejects %j", (text) => {
    const error = usageError(() => parseDuration(text));
    expect(error.message).toBe(`bad duration ${JSON.stringify(text)}: use e.g. 90s, 15m, 2h, 1d`);
  });
});
