// KubernetesEngine.build with the Kaniko builder on the real local cluster: directory and tar contexts,
// failures as BuildError, inspectImage, cancellation, and no leftovers.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, CancelledError, InvalidInputError, type KubernetesEngine } from "../../../src/index.js";
import { baseImage, collect, contextDir, deleteNamespace, engineNamespace, expectNoLeftovers, leftovers, tarOf, uniqueImage, type EngineNamespace } from "./helpers.js";

let ns: EngineNamespace;
let engine: KubernetesEngine;
let dir: string;

beforeAll(async () => {
  ns = await engineNamespace("e2e-build");
  // Every test here exercises the builder pod: an earlier run's image for the same content must not be reused
  // (content-addressed builds are covered by test/e2e/build/).
  engine = ns.engine({ builder: "kaniko", contentAddressed: false });
  dir = mkdtempSync(join(tmpdir(), "kce-build-"));
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

const context = (files: Record<string, string>): string => contextDir(dir, files);

describe("build (kaniko)", () => {
  it("builds a directory with .dockerignore, a non-default Dockerfile, args and labels; the image runs", async () => {
    const path = context({
      "binder/Dockerfile": [
        `FROM ${baseImage()}`,
        "ARG GREETING",
        "WORKDIR /srv/app",
        "COPY . .",
        'RUN echo "$GREETING" > /greeting && ls > /listing',
        'CMD ["sh", "-c", "cat /greeting /listing"]',
      ].join("\n"),
      "kept.txt": "kept",
      "ignored.log": "ignored",
      ".dockerignore": "*.log\n",
    });
    const tag = uniqueImage("dir");
    const stream = engine.build({
      tag,
      path,
      dockerfile: "binder/Dockerfile",
      buildArgs: { GREETING: "hello-arg" },
      labels: { "org.example.owner": "e2e", "org.example.empty": null },
    });
    const lines = await collect(stream);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.endsWith("\n"))).toBe(true);
    const result = await stream.result;
    expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.image).toBe(`${process.env.KCE_REGISTRY}/${tag}`);

    const image = await engine.inspectImage(tag);
    expect(image?.tags).toEqual([tag]);
    expect(image?.config?.WorkingDir).toBe("/srv/app");
    expect(image?.config?.Labels).toMatchObject({ "org.example.owner": "e2e", "org.example.empty": "" });

    const container = await engine.run(tag);
    await container.wait();
    const output = await container.logs();
    expect(output).toContain("hello-arg");
    expect(output).toContain("kept.txt");
    expect(output).not.toContain("ignored.log");
    await container.remove();
  });

  it("builds from a tar stream with the Dockerfile at its root (repo2docker's fileobj)", async () => {
    const tag = uniqueImage("tar");
    const stream = engine.build({
      tag,
      context: tarOf({ Dockerfile: `FROM ${baseImage()}\nCOPY hello.txt /hello.txt\nCMD ["cat", "/hello.txt"]\n`, "hello.txt": "from-tar\n" }),
    });
    await collect(stream);
    const container = await engine.run(tag);
    await container.wait();
    expect(await container.logs()).toBe("from-tar\n");
    await container.remove();
  });

  it("a failing RUN is a BuildError with the exit code and the builder's last lines", async () => {
    const path = context({ Dockerfile: `FROM ${baseImage()}\nRUN echo about-to-fail && exit 3\n` });
    const error = await collect(engine.build({ tag: uniqueImage("fail"), path })).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(BuildError);
    const buildError = error as BuildError;
    expect(buildError.reason).toBe("failed");
    expect(buildError.message).toMatch(/exit (status|code):? 3/);
    expect(buildError.logTail.join("\n")).toContain("about-to-fail");
  });

  it("a missing base image is a BuildError", async () => {
    const path = context({ Dockerfile: `FROM ${process.env.KCE_REGISTRY}/kce-e2e/no-such-base:none\nRUN true\n` });
    await expect(collect(engine.build({ tag: uniqueImage("nobase"), path }))).rejects.toBeInstanceOf(BuildError);
  });

  it("inspectImage of an unknown image is null", async () => {
    expect(await engine.inspectImage(uniqueImage("unknown"))).toBeNull();
  });

  it("bad input is rejected before anything is created", async () => {
    const before = await leftovers(ns.admin);
    await expect(collect(engine.build({ tag: "Bad:Tag:", path: dir }))).rejects.toBeInstanceOf(InvalidInputError);
    await expect(collect(engine.build({ tag: uniqueImage("x"), path: join(dir, "missing") }))).rejects.toBeInstanceOf(InvalidInputError);
    const noDockerfile = context({ "README.md": "no Dockerfile here" });
    await expect(collect(engine.build({ tag: uniqueImage("x"), path: noDockerfile }))).rejects.toBeInstanceOf(InvalidInputError);
    // Only objects of earlier tests still terminating may be there; none may be new.
    expect((await leftovers(ns.admin)).filter((name) => !before.includes(name))).toEqual([]);
  });

  it("aborting a build deletes the builder and throws CancelledError", async () => {
    const path = context({ Dockerfile: `FROM ${baseImage()}\nRUN echo started-sleeping && sleep 600\n` });
    const controller = new AbortController();
    const stream = engine.build({ tag: uniqueImage("abort"), path, signal: controller.signal });
    const lines: string[] = [];
    const outcome = (async () => {
      for await (const line of stream) {
        lines.push(line);
        if (line.includes("started-sleeping")) controller.abort();
      }
    })();
    await expect(outcome).rejects.toBeInstanceOf(CancelledError);
    await expectNoLeftovers(ns.admin, 15_000);
  });
});

describe("context compression", () => {
  // Every other build sends the context stored (the default "auto" on this fast local link): here the
  // builders must read a context that is really compressed.
  it.each(["kaniko", "buildkit"] as const)("%s builds a context sent with gzip level 9", async (builder) => {
    const compressed = ns.engine({
      builder,
      buildkitMode: "privileged",
      contentAddressed: false,
      contextCompression: 9,
      log: () => undefined,
    });
    const text = "compressible line of text for the context upload\n".repeat(20_000);
    const path = context({ Dockerfile: `FROM ${baseImage()}\nCOPY words.txt /words.txt\nCMD ["wc", "-c", "/words.txt"]\n`, "words.txt": text });
    const tag = uniqueImage(`gzip9-${builder}`);
    const reports: { tarBytes: number; gzipBytes: number; compressionLevel: number }[] = [];
    const stream = compressed.build({ tag, path, onProgress: (p) => void (p.kind === "context" && reports.push(p)) });
    await collect(stream);
    const last = reports.at(-1);
    expect(last?.compressionLevel).toBe(9);
    expect(last?.gzipBytes).toBeLessThan((last?.tarBytes ?? 0) / 20);
    const container = await compressed.run(tag);
    await container.wait();
    expect((await container.logs()).trim()).toBe(`${text.length} /words.txt`);
    await container.remove();
  });
});
