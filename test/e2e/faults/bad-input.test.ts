// Row 1 of the reliability matrix: bad input is a typed error before any API call, and nothing is created.
// "Before any API call" is proven with an engine whose API server and registry cannot be reached: had it
// sent anything, the error would be a KubernetesApiError (or a registry error) instead of InvalidInputError.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { KubeConfig } from "@kubernetes/client-node";
import { pack } from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidInputError, KubernetesEngine } from "../../../src/index.js";
import { baseImage, collect, deleteNamespace, engineNamespace, leftovers, uniqueImage, type EngineNamespace } from "../engine/helpers.js";
import { failure, withinBound } from "./helpers.js";

let ns: EngineNamespace;
let dir: string;

/** An engine that cannot reach any API server or registry. */
function offlineEngine(): KubernetesEngine {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "nowhere", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "nowhere", cluster: "nowhere", user: "u" }],
    currentContext: "nowhere",
  });
  return new KubernetesEngine({ kubeConfig, namespace: "default", registry: { host: "127.0.0.1:1", insecure: true }, log: () => undefined }, {});
}

/** A tar stream with arbitrary entries (files, symlinks), as a malicious or broken client might send. */
function rawTar(entries: { name: string; content?: string; linkname?: string }[]): Readable {
  const archive = pack();
  for (const e of entries) {
    if (e.linkname !== undefined) archive.entry({ name: e.name, type: "symlink", linkname: e.linkname });
    else archive.entry({ name: e.name, mode: 0o644 }, e.content ?? "");
  }
  archive.finalize();
  return Readable.from(archive);
}

const DOCKERFILE = { name: "Dockerfile", content: "FROM scratch\nCOPY . /\n" };

beforeAll(async () => {
  ns = await engineNamespace("e2e-faults-input");
  dir = mkdtempSync(join(tmpdir(), "kce-faults-input-"));
  mkdirSync(join(dir, "no-dockerfile"));
  writeFileSync(join(dir, "no-dockerfile", "README"), "no Dockerfile here\n");
  mkdirSync(join(dir, "ok"));
  writeFileSync(join(dir, "ok", "Dockerfile"), "FROM scratch\n");
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await deleteNamespace(ns?.admin);
});

/** Each bad input, with the words its message must contain to say what to fix. */
const BUILD_CASES: { name: string; options: () => Parameters<KubernetesEngine["build"]>[0]; message: RegExp }[] = [
  { name: "a missing context directory", options: () => ({ tag: uniqueImage("x"), path: join(dir, "missing") }), message: /missing|does not exist|no such/i },
  { name: "a missing Dockerfile", options: () => ({ tag: uniqueImage("x"), path: join(dir, "no-dockerfile") }), message: /Dockerfile/ },
  { name: "a bad tag", options: () => ({ tag: "Bad:Tag:", path: join(dir, "ok") }), message: /Bad:Tag:/ },
  { name: "a tar entry with ..", options: () => ({ tag: uniqueImage("x"), context: rawTar([DOCKERFILE, { name: "a/../../etc/passwd", content: "x" }]) }), message: /\.\./ },
  { name: "an absolute symlink in a tar", options: () => ({ tag: uniqueImage("x"), context: rawTar([DOCKERFILE, { name: "link", linkname: "/etc/shadow" }]) }), message: /symlink.*absolute/ },
  { name: "a symlink escaping the context", options: () => ({ tag: uniqueImage("x"), context: rawTar([DOCKERFILE, { name: "sub/link", linkname: "../../outside" }]) }), message: /symlink.*escap/ },
];

const RUN_CASES: { name: string; options: Parameters<KubernetesEngine["run"]>[1]; ref?: string; message: RegExp }[] = [
  { name: "KEY without =", options: { environment: ["NOEQUALS"] }, message: /NOEQUALS/ },
  { name: "a bad port spec", options: { ports: { "eighty/tcp": 8080 } }, message: /eighty/ },
  { name: "a UDP port", options: { ports: { "53/udp": 5353 } }, message: /udp/i },
  { name: "a bad image name", options: {}, ref: "UPPER/Case::bad", message: /UPPER\/Case::bad/ },
];

describe("row 1 — bad input", () => {
  for (const c of BUILD_CASES) {
    // row 1 | build: missing context or Dockerfile, bad tag, `..` or absolute/escaping symlink in a tar | InvalidInputError naming the bad part, before any API call (an engine that cannot reach the cluster fails the same way); nothing created
    it(`build with ${c.name} is an InvalidInputError before any API call`, async () => {
      const started = Date.now();
      const { error, ms } = await failure(collect(offlineEngine().build(c.options())), started);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toMatch(c.message);
      withinBound(`row1-build-${c.name.replace(/\W+/g, "-")}`, ms, 2_000);
    });
  }

  for (const c of RUN_CASES) {
    // row 1 | run: `KEY` without `=`, bad or UDP port spec, bad image name | InvalidInputError naming the bad part, before any API call; nothing created
    it(`run with ${c.name} is an InvalidInputError before any API call`, async () => {
      const started = Date.now();
      const { error, ms } = await failure(offlineEngine().run(c.ref ?? baseImage(), c.options), started);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect(error.message).toMatch(c.message);
      withinBound(`row1-run-${c.name.replace(/\W+/g, "-")}`, ms, 2_000);
    });
  }

  // row 1 | all of the above against the real cluster | the same errors; no object with our label appears in the namespace
  it("against the real cluster the same inputs create nothing", async () => {
    const engine = ns.engine();
    for (const c of BUILD_CASES) await expect(collect(engine.build(c.options()))).rejects.toBeInstanceOf(InvalidInputError);
    for (const c of RUN_CASES) await expect(engine.run(c.ref ?? baseImage(), c.options)).rejects.toBeInstanceOf(InvalidInputError);
    expect(await leftovers(ns.admin)).toEqual([]);
    const events = await ns.admin.call("list", "events", (o) => ns.admin.core.listNamespacedEvent({ namespace: ns.namespace }, o));
    expect(events.items.map((e) => `${e.involvedObject.kind}/${e.involvedObject.name}: ${e.reason}`)).toEqual([]);
  });
});
