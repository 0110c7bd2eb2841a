// Both builders on the real cluster: the same multi-stage Dockerfile (COPY --chmod, a build arg) builds and runs
// with the same result; an unchanged rebuild starts no pod; a one-line change to the last layer reuses the layer
// cache; two identical builds started at once share one builder pod; BuildKit `auto` refuses a root image.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BuildResult } from "../../../src/imaging/builder.js";
import { InvalidInputError, type KubernetesEngine } from "../../../src/index.js";
import { withinBound } from "../../support/measurements.js";
import { baseImage, collect, leftovers, type EngineNamespace } from "../engine/helpers.js";
import { builderOptions, contextDir, timed, useBuildScope } from "./helpers.js";

const BUILDERS = ["kaniko", "buildkit"] as const;
type BuilderName = (typeof BUILDERS)[number];

const scope = useBuildScope("builders");
const outputs = new Map<BuilderName, string>();
const timings: Record<string, number> = {};

afterAll(() => {
  console.log(`build timings (ms): ${JSON.stringify(timings)}`);
});

/** The multi-stage context; `version` is the last layer's one line. */
function multiStage(version: string): Record<string, string> {
  return {
    Dockerfile: [
      `FROM ${baseImage()} AS stage-one`,
      "ARG GREETING=unset",
      'RUN mkdir -p /out && echo "$GREETING from stage one" > /out/greeting && sleep 2',
      `FROM ${baseImage()}`,
      "COPY --from=stage-one /out/greeting /srv/greeting",
      "COPY --chmod=755 show.sh /usr/local/bin/show",
      'CMD ["show"]',
      `RUN echo ${version} > /srv/version`,
    ].join("\n"),
    "show.sh": "#!/bin/sh\ncat /srv/greeting\nstat -c %a /usr/local/bin/show\ncat /srv/version\n",
  };
}

function engineFor(builder: BuilderName, options: Parameters<EngineNamespace["engine"]>[0] = {}): KubernetesEngine {
  return scope.ns.engine({ ...builderOptions(builder), ...options });
}

async function build(engine: KubernetesEngine, tag: string, path: string): Promise<{ lines: string[]; result: BuildResult; ms: number }> {
  const stream = engine.build({ tag, path, buildArgs: { GREETING: "hello-multi" } });
  const { value: lines, ms } = await timed(() => collect(stream));
  return { lines, result: await stream.result, ms };
}

async function runOutput(engine: KubernetesEngine, tag: string): Promise<string> {
  const container = await engine.run(tag);
  await container.wait();
  const output = await container.logs();
  await container.remove();
  return output;
}

/** The image runs (its CMD is the base image's shell, which exits at once); returns its output. */
async function runOutputOf(tag: string): Promise<string> {
  return runOutput(engineFor("kaniko"), tag);
}

const CACHE_HIT: Record<BuilderName, RegExp> = {
  kaniko: /Using caching version of cmd|Found cached layer/,
  buildkit: /#\d+ CACHED/,
};

describe.each(BUILDERS)("%s", (builder) => {
  const repository = `kce-e2e/multi-${builder}-${randomBytes(4).toString("hex")}`;
  let engine: KubernetesEngine;
  let path: string;
  let firstDigest: string | null = null;

  beforeAll(() => {
    engine = engineFor(builder);
    path = contextDir(scope.dir, multiStage("layer-v1"));
  });

  it("builds the multi-stage Dockerfile (cold) and the image runs", async () => {
    const { lines, result, ms } = await build(engine, `${repository}:v1`, path);
    timings[`${builder} cold`] = ms;
    expect(result.source).toBe("built");
    expect(result.pod).toBeTruthy();
    expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(lines.every((l) => l.endsWith("\n"))).toBe(true);
    firstDigest = result.digest;
    const output = await runOutput(engine, `${repository}:v1`);
    expect(output).toBe("hello-multi from stage one\n755\nlayer-v1\n");
    outputs.set(builder, output);
  });

  it("an unchanged rebuild (under another tag) starts no pod, reports the existing image and is fast", async () => {
    const before = scope.pods.names();
    const { lines, result, ms } = await build(engineFor(builder), `${repository}:again`, contextDir(scope.dir, multiStage("layer-v1")));
    timings[`${builder} unchanged`] = ms;
    expect(result).toMatchObject({ source: "existing", pod: null, digest: firstDigest });
    expect(lines.join("")).toMatch(/^Using existing image for content hash [0-9a-f]{16}: .*\(no builder pod started\)\n$/);
    withinBound(`build/${builder}-unchanged-rebuild`, ms, 5_000);
    expect(scope.pods.namesSince(before)).toEqual([]);
    // The new tag names the same image: no bytes moved, the manifest was tagged.
    const image = await engine.inspectImage(`${repository}:again`);
    expect(image?.tags).toEqual([`${repository}:again`]);
  });

  it("after a one-line change to the last layer the rebuild reuses the layer cache", async () => {
    const { lines, result, ms } = await build(engine, `${repository}:v2`, contextDir(scope.dir, multiStage("layer-v2")));
    timings[`${builder} warm (last line changed)`] = ms;
    expect(result.source).toBe("built");
    expect(lines.join("")).toMatch(CACHE_HIT[builder]);
    expect(await runOutput(engine, `${repository}:v2`)).toBe("hello-multi from stage one\n755\nlayer-v2\n");
  });
});

describe("both builders", () => {
  it("produce images that print the same result", () => {
    expect(outputs.size).toBe(2);
    expect(outputs.get("kaniko")).toBe(outputs.get("buildkit"));
  });

  it("images() lists the built tags but not the content tags or layer caches", async () => {
    const names = (await engineFor("kaniko").images()).flatMap((image) => image.tags);
    expect(names.some((n) => /^kce-e2e\/multi-kaniko-[0-9a-f]+:v1$/.test(n))).toBe(true);
    expect(names.filter((n) => /:kce-[0-9a-f]{16}$|\/kce-cache:/.test(n))).toEqual([]);
  });

  it("two identical builds started at once share one builder pod", async () => {
    const repository = `kce-e2e/shared-${randomBytes(4).toString("hex")}`;
    const files = multiStage("shared");
    const podsBefore = scope.pods.names();
    const jobsBefore = scope.jobs.names();
    // Two engines stand for two clients; different tags, same content.
    const [a, b] = await Promise.all([
      build(engineFor("kaniko"), `${repository}:a`, contextDir(scope.dir, files)),
      build(engineFor("kaniko"), `${repository}:b`, contextDir(scope.dir, files)),
    ]);
    expect([a.result.source, b.result.source].sort()).toEqual(["built", "joined"]);
    expect(a.result.digest).toBe(b.result.digest);
    expect(scope.jobs.namesSince(jobsBefore)).toHaveLength(1);
    expect(scope.pods.namesSince(podsBefore)).toHaveLength(1);
    const joined = a.result.source === "joined" ? a : b;
    expect(joined.lines[0]).toMatch(/^Joining the identical build already running in job kce-build-/);
    expect(joined.lines.join("")).toContain("Pushed");
    const engine = engineFor("kaniko");
    expect((await engine.inspectImage(`${repository}:a`))?.tags).toEqual([`${repository}:a`]);
    expect((await engine.inspectImage(`${repository}:b`))?.tags).toEqual([`${repository}:b`]);
  });

  it("when the build it joined is cancelled, the joiner builds by itself", async () => {
    const repository = `kce-e2e/takeover-${randomBytes(4).toString("hex")}`;
    const files = { Dockerfile: `FROM ${baseImage()}\nRUN echo started-sleeping && sleep 6\nRUN echo done > /done\n` };
    const controller = new AbortController();
    const owner = engineFor("kaniko").build({ tag: `${repository}:owner`, path: contextDir(scope.dir, files), signal: controller.signal });
    const joinerLines: string[] = [];
    let joined!: () => void;
    const joinedSeen = new Promise<void>((resolve) => (joined = resolve));
    let joiner: Promise<BuildResult> | null = null;
    const ownerOutcome = (async () => {
      for await (const line of owner) {
        if (!line.includes("started-sleeping") || joiner) continue;
        const stream = engineFor("kaniko").build({ tag: `${repository}:joiner`, path: contextDir(scope.dir, files) });
        joiner = (async () => {
          for await (const l of stream) {
            joinerLines.push(l);
            if (process.env.KCE_DEBUG) console.log(new Date().toISOString(), "joiner", l.trimEnd());
            if (l.startsWith("Joining")) joined();
          }
          return stream.result;
        })();
        await joinedSeen;
        controller.abort();
      }
    })();
    await expect(ownerOutcome).rejects.toThrow(/cancelled/);
    expect(joiner).not.toBeNull();
    const result = await (joiner as unknown as Promise<BuildResult>);
    expect(result.source).toBe("built");
    expect(joinerLines[0]).toMatch(/^Joining the identical build/);
    expect(joinerLines.join("")).toMatch(/RUN echo done/);
    expect(await runOutputOf(`${repository}:joiner`)).toBe("");
  });

  it("BuildKit honours cacheFrom: a new repository without a cache of its own reuses an earlier image's layers", async () => {
    const engine = engineFor("buildkit", { layerCache: false, contentAddressed: false });
    const first = `kce-e2e/cache-from-a-${randomBytes(4).toString("hex")}:1`;
    await build(engine, first, contextDir(scope.dir, multiStage("from-a")));
    const stream = engine.build({
      tag: `kce-e2e/cache-from-b-${randomBytes(4).toString("hex")}:1`,
      path: contextDir(scope.dir, multiStage("from-b")),
      buildArgs: { GREETING: "hello-multi" },
      cacheFrom: [first],
    });
    const lines = await collect(stream);
    expect(lines.join("")).toMatch(/importing cache manifest from .*cache-from-a/);
    expect(lines.join("")).toMatch(/#\d+ \[stage-one 2\/2\] RUN[^\n]*\n#\d+ CACHED/);
  });

  it("BuildKit auto mode with a root image fails before creating anything, naming both ways out", async () => {
    const before = await leftovers(scope.ns.admin);
    const messages: string[] = [];
    const engine = scope.ns.engine({ builder: "buildkit", buildkitMode: "auto", log: (m) => messages.push(m) });
    const error = await collect(engine.build({ tag: `kce-e2e/auto:${randomBytes(3).toString("hex")}`, path: contextDir(scope.dir, multiStage("auto")) })).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(String(error)).toMatch(/rootless BuildKit image/);
    expect(String(error)).toMatch(/buildkitMode "privileged"/);
    expect((await leftovers(scope.ns.admin)).filter((n) => !before.includes(n))).toEqual([]);
  });

  it("an explicit privileged BuildKit announces itself with a warning", async () => {
    const messages: string[] = [];
    const engine = scope.ns.engine({ builder: "buildkit", buildkitMode: "privileged", log: (m) => messages.push(m) });
    const repository = `kce-e2e/announce-${randomBytes(3).toString("hex")}`;
    await collect(engine.build({ tag: `${repository}:1`, path: contextDir(scope.dir, { Dockerfile: `FROM ${baseImage()}\nRUN true\n` }) }));
    expect(messages).toContain("BuildKit mode privileged (explicit buildkitMode)");
    expect(messages.some((m) => /^warning: BuildKit runs privileged/.test(m))).toBe(true);
  });
});
