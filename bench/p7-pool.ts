/**
 * P7 warm builders: the same builds by
 *  - the Kaniko recipe (`tar cz | kubectl run -i --rm … --context=tar://stdin`),
 *  - the engine with `builder: "buildkit-pool"` (warm rootless BuildKit daemons, one exec per build),
 *  - `docker buildx` with its `kubernetes` driver (buildx built from the Go module proxy, run standalone:
 *    no Docker daemon), on the same rootless BuildKit image and cluster, in the bench's namespace.
 * Measured: a trivial build (a fresh RUN value each time), a warm rebuild with one changed file against a cold
 * build of the same Dockerfile, a 512 MiB / 50k-file context (pool vs buildx), 8 builds at once.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { KubernetesEngine } from "../src/index.js";
import type { Bench } from "./context.js";
import { bash, check, kubectlPath, makeTree, MiB, OUT, q, run, stats, suffix } from "./lib.js";
import { compare, type Row } from "./report.js";

const BUILDX_VERSION = "v0.38.2";

/** buildx, built once from the Go module proxy into $KCE_HOME/bin/buildx-<version>/ (the cluster's Go caches). */
async function buildxBinary(log: (m: string) => void): Promise<string> {
  const home = process.env.KCE_HOME ?? join(homedir(), ".cache", "kce");
  const dir = join(home, "bin", `buildx-${BUILDX_VERSION}`);
  const bin = join(dir, "buildx");
  if (existsSync(bin)) return bin;
  log(`P7: building buildx ${BUILDX_VERSION} from the Go module proxy (once, ≈ 6 min cold)`);
  const tmp = mkdtempSync(join(home, "bin", ".tmp-buildx-"));
  await check("go", ["install", "-trimpath", `-ldflags=-s -w -X github.com/docker/buildx/version.Version=${BUILDX_VERSION}`, `github.com/docker/buildx/cmd/buildx@${BUILDX_VERSION}`], {
    env: {
      ...process.env,
      GOBIN: tmp,
      GOTOOLCHAIN: "local",
      GOFLAGS: "-mod=mod",
      GOCACHE: join(home, "go", "cache"),
      GOMODCACHE: join(home, "go", "mod"),
      PATH: `/usr/local/go/bin:${process.env.PATH ?? ""}`,
    },
  });
  mkdirSync(dir, { recursive: true });
  await check("mv", [join(tmp, "buildx"), bin]);
  await check("rm", ["-rf", tmp]);
  return bin;
}

type Variant = "recipe" | "pool" | "buildx";

export async function benchPool(b: Bench): Promise<Row[]> {
  const rootless = b.env.KCE_BUILDKIT_ROOTLESS_IMAGE ?? process.env.KCE_BUILDKIT_ROOTLESS_IMAGE ?? "";
  if (!rootless) throw new Error("KCE_BUILDKIT_ROOTLESS_IMAGE is not set");
  const buildx = await buildxBinary(b.log);
  const buildxHome = mkdtempSync(join(tmpdir(), "kce-bench-buildx-"));
  const buildxEnv = { ...process.env, BUILDX_CONFIG: buildxHome, DOCKER_CONFIG: buildxHome };
  const name = `kcebench${suffix()}`;
  const pool = `bench${suffix()}`;
  const engine = (maxDaemons = 2): KubernetesEngine =>
    new KubernetesEngine({
      namespace: b.namespace,
      builder: "buildkit-pool",
      builderImages: { buildkit: rootless },
      pool: { name: pool, maxDaemons, idleSeconds: 900, memory: "1Gi", cacheSize: "6Gi" },
      layerCache: false,
      contentAddressed: false,
      log: () => undefined,
    });
  const dir = join(OUT, "contexts", "p7");
  mkdirSync(dir, { recursive: true });
  const buildWith = async (variant: Variant, path: string, tag: string, e = engine()): Promise<void> => {
    if (variant === "recipe") {
      await bash(
        `tar cz -C ${q(path)} . | ${q(kubectlPath())} run kaniko-${suffix()} -n ${b.namespace} -i --rm --restart=Never --image=${q(b.kanikoImage)} -- ` +
          `--context=tar://stdin --destination=${q(`${b.pushRegistry}/${tag}`)} --insecure --insecure-pull`,
      );
    } else if (variant === "pool") {
      const stream = e.build({ tag, path });
      for await (const _l of stream) {
        // output not needed
      }
      await stream.result;
    } else {
      const r = await run(
        buildx,
        ["build", "--builder", name, "--provenance=false", "--progress=plain", "--output", `type=image,name=${b.pushRegistry}/${tag},push=true,registry.insecure=true`, path],
        { env: buildxEnv },
      );
      if (r.code !== 0) throw new Error(`buildx build exited ${r.code}: ${r.stderr.slice(-2000)}`);
    }
  };
  const timed = async (f: () => Promise<void>): Promise<number> => {
    const t = performance.now();
    await f();
    return (performance.now() - t) / 1000;
  };
  try {
    await check(buildx, ["create", "--name", name, "--driver", "kubernetes", "--driver-opt", `namespace=${b.namespace},image=${rootless},rootless=true,replicas=1`, "--bootstrap"], {
      env: buildxEnv,
    });
    const trivial: Record<Variant, number[]> = { recipe: [], pool: [], buildx: [] };
    const order: Variant[] = ["recipe", "pool", "buildx"];
    for (let rep = -1; rep < b.options.reps; rep++) {
      for (const variant of rep % 2 === 0 ? order : [...order].reverse()) {
        const path = join(dir, `trivial-${variant}`);
        mkdirSync(path, { recursive: true });
        writeFileSync(join(path, "Dockerfile"), `FROM ${b.baseImage}\nRUN echo ${suffix()} > /built\n`);
        const s = await timed(() => buildWith(variant, path, `kce-bench/p7-${variant}:${suffix()}`));
        if (rep >= 0) trivial[variant].push(s);
        b.log(`P7 ${rep < 0 ? "warm-up" : `rep ${rep + 1}`} trivial ${variant}: ${s.toFixed(2)} s`);
      }
    }

    // Cold vs warm: a slow step, then the file that changes. Cold = a new Dockerfile the daemon never saw.
    const coldWarm: Record<"pool" | "buildx", { cold: number[]; warm: number[] }> = { pool: { cold: [], warm: [] }, buildx: { cold: [], warm: [] } };
    for (let rep = 0; rep < Math.max(1, Math.min(3, b.options.reps)); rep++) {
      for (const variant of ["pool", "buildx"] as const) {
        const path = join(dir, `cw-${variant}-${rep}`);
        mkdirSync(path, { recursive: true });
        const nonce = suffix();
        writeFileSync(join(path, "Dockerfile"), `FROM ${b.baseImage}\nRUN echo ${nonce} && sleep 3 && head -c 8388608 /dev/urandom > /blob\nCOPY last.txt /last.txt\n`);
        writeFileSync(join(path, "last.txt"), "one\n");
        coldWarm[variant].cold.push(await timed(() => buildWith(variant, path, `kce-bench/p7-cw-${variant}:${nonce}-1`)));
        writeFileSync(join(path, "last.txt"), "two\n");
        coldWarm[variant].warm.push(await timed(() => buildWith(variant, path, `kce-bench/p7-cw-${variant}:${nonce}-2`)));
        b.log(`P7 cold/warm ${variant}: ${coldWarm[variant].cold.at(-1)?.toFixed(2)} / ${coldWarm[variant].warm.at(-1)?.toFixed(2)} s`);
      }
    }

    // The big context, once each (b.options.quick: skipped): read by the build (a bind mount of the context:
    // no big layer to push), and not referenced at all (BuildKit then fetches nothing of it; the engine sends
    // the whole tar anyway).
    const big: Record<"pool" | "buildx", { read: number[]; unread: number[] }> = { pool: { read: [], unread: [] }, buildx: { read: [], unread: [] } };
    if (!b.options.quick) {
      for (const [kind, dockerfile] of [
        ["read", `FROM ${b.baseImage}\nRUN --mount=type=bind,target=/ctx,source=. du -sk /ctx && echo ${suffix()}\n`],
        ["unread", `FROM ${b.baseImage}\nRUN echo big ${suffix()}\n`],
      ] as const) {
        const tree = await makeTree(join(OUT, "contexts", "p2-512m"), 50_000, 512 * MiB, dockerfile);
        for (const variant of ["pool", "buildx"] as const) {
          big[variant][kind].push(await timed(() => buildWith(variant, tree.dir, `kce-bench/p7-big-${variant}:${suffix()}`)));
          b.log(`P7 512 MiB context (${kind}) ${variant}: ${big[variant][kind].at(-1)?.toFixed(1)} s`);
        }
      }
    }

    // 8 builds at once through the pool (at most 4 daemons, one build each): all must succeed.
    const eight = engine(4);
    let ok = 0;
    const eightSeconds = await timed(async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, async (_, i) => {
          const path = join(dir, `eight-${i}`);
          mkdirSync(path, { recursive: true });
          writeFileSync(join(path, "Dockerfile"), `FROM ${b.baseImage}\nRUN echo ${suffix()} ${i} > /built\n`);
          await buildWith("pool", path, `kce-bench/p7-eight-${i}:${suffix()}`, eight);
        }),
      );
      ok = results.filter((r) => r.status === "fulfilled").length;
    });

    const row = (name: string, values: number[], unit = "s"): Row => ({ id: "P7", name, unit, stats: stats(values) });
    const recipe = row("Kaniko recipe: tar cz | kubectl run -i --rm (trivial build)", trivial.recipe);
    const bx = row("buildx kubernetes driver, warm builder (trivial build)", trivial.buildx);
    const poolTrivial = row("engine, builder buildkit-pool, warm daemon (trivial build)", trivial.pool);
    const rows: Row[] = [
      recipe,
      bx,
      compare(poolTrivial, recipe, { text: "≤ 0.5×", ok: (r) => r <= 0.5 }),
      compare(poolTrivial, bx, { text: "≤ 1.0×", ok: (r) => r <= 1.0 }),
    ];
    for (const v of ["pool", "buildx"] as const) {
      const cold = row(`${v === "pool" ? "buildkit-pool" : "buildx"}: cold build (3 s RUN + 8 MiB layer, COPY)`, coldWarm[v].cold);
      rows.push(cold, compare(row(`${v === "pool" ? "buildkit-pool" : "buildx"}: warm rebuild, COPY'd file changed`, coldWarm[v].warm), cold, v === "pool" ? { text: "≤ 0.15×", ok: (r) => r <= 0.15 } : undefined));
    }
    if (big.pool.read.length > 0) {
      const readBx = row("buildx: 512 MiB / 50k-file context, read by the build (bind mount)", big.buildx.read);
      rows.push(readBx, compare(row("buildkit-pool: 512 MiB / 50k-file context, read by the build (bind mount)", big.pool.read), readBx));
      const unreadBx = row("buildx: 512 MiB / 50k-file context the Dockerfile never uses (BuildKit fetches none of it)", big.buildx.unread);
      rows.push(unreadBx, compare(row("buildkit-pool: the same (the engine sends the whole tar)", big.pool.unread), unreadBx));
    }
    rows.push({ id: "P7", name: "buildkit-pool: 8 builds at once (4 daemons)", unit: "s", stats: stats([eightSeconds]), goal: "all succeed", met: ok === 8, note: `${ok}/8 succeeded` });
    b.facts.p7 = { buildx: BUILDX_VERSION, image: rootless, eightOk: ok };
    return rows;
  } finally {
    await run(buildx, ["rm", "--force", name], { env: buildxEnv });
    await new KubernetesEngine({ namespace: b.namespace, log: () => undefined }).gc({ all: true }).catch(() => []);
  }
}
