/**
 * P1 build: the same two-line Dockerfile built and pushed by
 *  - the documented Kaniko recipe: `tar cz | kubectl run -i --rm --restart=Never --image=<kaniko> --
 *    --context=tar://stdin --destination=… --insecure --insecure-pull`;
 *  - `kce build` (a fresh CLI process, like kubectl), with layer cache and content hash off (the recipe's work);
 *  - `kce build` with its defaults (layer cache pushed, content hash looked up: extra work the recipe skips);
 *  - `engine.build()` in a warm process, with Kaniko and with BuildKit.
 * Every repetition writes a new RUN line, so no cache can hit; the variants alternate within a repetition so
 * the machine's load spreads evenly over them.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KubernetesEngine } from "../src/index.js";
import type { Bench } from "./context.js";
import { bash, kubectlPath, OUT, q, run, stats, suffix } from "./lib.js";
import { compare, type Row } from "./report.js";

type Variant = "recipe" | "cli" | "cliDefaults" | "engineKaniko" | "engineBuildkit";

const NAMES: Record<Variant, string> = {
  recipe: "Kaniko recipe: tar cz | kubectl run -i --rm",
  cli: "kce build (cache and content hash off)",
  cliDefaults: "kce build (defaults: layer cache, content hash)",
  engineKaniko: "engine.build(), Kaniko, warm process",
  engineBuildkit: "engine.build(), BuildKit (privileged), warm process",
};

export async function benchBuild(b: Bench): Promise<Row[]> {
  const dir = join(OUT, "contexts", "p1");
  await mkdir(dir, { recursive: true });
  const times: Record<Variant, number[]> = { recipe: [], cli: [], cliDefaults: [], engineKaniko: [], engineBuildkit: [] };
  let buildkitError: string | null = null;
  const cacheOff = { KCE_LAYER_CACHE: "0", KCE_CONTENT_ADDRESSED: "0" };
  const engine = (builder: "kaniko" | "buildkit"): KubernetesEngine =>
    new KubernetesEngine({ namespace: b.namespace, builder, buildkitMode: "privileged", layerCache: false, contentAddressed: false, log: () => undefined });
  const engines = { kaniko: engine("kaniko"), buildkit: engine("buildkit") };

  // One unmeasured build each warms the node's image cache (the builder images) and the engine modules.
  const order: Variant[] = ["recipe", "cli", "cliDefaults", "engineKaniko", "engineBuildkit"];
  for (let rep = -1; rep < b.options.reps; rep++) {
    for (const variant of order) {
      if (variant === "engineBuildkit" && buildkitError) continue;
      const nonce = suffix();
      await writeFile(join(dir, "Dockerfile"), `FROM ${b.baseImage}\nRUN echo ${nonce} > /built\n`);
      const tag = `kce-bench/p1-${variant.toLowerCase()}:${nonce}`;
      const started = performance.now();
      try {
        if (variant === "recipe") {
          const pod = `kaniko-recipe-${nonce}`;
          await bash(
            `tar cz -C ${q(dir)} . | ${q(kubectlPath())} run ${pod} -n ${b.namespace} -i --rm --restart=Never --image=${q(b.kanikoImage)} -- ` +
              `--context=tar://stdin --destination=${q(`${b.pushRegistry}/${tag}`)} --insecure --insecure-pull`,
          );
        } else if (variant === "cli" || variant === "cliDefaults") {
          const r = await run("node", [b.cli, "build", dir, "-t", tag, "-n", b.namespace, "-q"], {
            env: { ...process.env, ...(variant === "cli" ? cacheOff : {}) },
          });
          if (r.code !== 0) throw new Error(`kce build exited ${r.code}: ${r.stderr.slice(-2000)}`);
        } else {
          const stream = engines[variant === "engineKaniko" ? "kaniko" : "buildkit"].build({ tag, path: dir });
          for await (const _line of stream) {
            // the builder's output is not needed
          }
          await stream.result;
        }
      } catch (err) {
        if (variant === "engineBuildkit") {
          buildkitError = err instanceof Error ? err.message.split("\n")[0] ?? "" : String(err);
          b.log(`P1: BuildKit failed, left out: ${buildkitError}`);
          continue;
        }
        throw err;
      }
      const seconds = (performance.now() - started) / 1000;
      if (rep >= 0) times[variant].push(seconds);
      b.log(`P1 ${rep < 0 ? "warm-up" : `rep ${rep + 1}`} ${variant}: ${seconds.toFixed(2)} s`);
    }
  }
  const row = (v: Variant): Row => ({ id: "P1", name: NAMES[v], unit: "s", stats: stats(times[v]) });
  const recipe = row("recipe");
  const goal = { text: "≤ 1.05×", ok: (r: number) => r <= 1.05 };
  const rows = [
    recipe,
    compare(row("cli"), recipe, goal),
    compare(row("cliDefaults"), recipe, goal),
    compare(row("engineKaniko"), recipe, goal),
  ];
  const engineKaniko = rows[3] as Row;
  if (buildkitError) {
    rows.push({ id: "P1", name: NAMES.engineBuildkit, unit: "s", stats: stats([]), note: `failed: ${buildkitError}` });
  } else {
    rows.push(compare(row("engineBuildkit"), engineKaniko));
  }
  b.facts.p1 = { buildkitError, dockerfile: `FROM ${b.baseImage}\\nRUN echo <nonce> > /built` };
  return rows;
}
