import { createHash, randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { extract, pack, type Header } from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { computeContextDigest, createBuildContext, type BuildContext } from "../../../src/imaging/context.js";
import { listDirectory } from "../../../src/imaging/context-dir.js";
import { tarBlocks, tarSize } from "../../../src/imaging/tar-format.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kce-ctx-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function files(root: string, tree: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(tree)) {
    await mkdir(join(root, path, ".."), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Streams the context once, returns the gzip bytes and the summary. */
async function run(ctx: BuildContext) {
  const { stream, done } = ctx.open();
  const gz = await collect(stream);
  return { gz, summary: await done };
}

interface Member {
  header: Header;
  body: string;
}
async function members(tarBytes: Buffer): Promise<Member[]> {
  const out: Member[] = [];
  const ex = extract();
  const reading = (async () => {
    for await (const entry of ex) {
      const body: Buffer[] = [];
      for await (const c of entry) body.push(c as Buffer);
      out.push({ header: entry.header, body: Buffer.concat(body).toString() });
    }
  })();
  ex.end(tarBytes);
  await reading;
  return out;
}

async function makeTar(
  list: { name: string; type?: Header["type"]; body?: string; linkname?: string; mode?: number }[],
): Promise<Buffer> {
  const p = pack();
  for (const e of list) {
    const header = { name: e.name, type: e.type ?? "file", linkname: e.linkname, mode: e.mode, mtime: new Date(1234567890000) };
    if (header.type === "file") p.entry(header, e.body ?? "");
    else p.entry(header);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

describe("directory contexts", () => {
  it("produce the same bytes and hash twice, and a tar with normalized headers", async () => {
    await files(dir, { Dockerfile: "FROM scratch\n", "b/c.txt": "c", "a.txt": "a", "b/a.txt": "ba" });
    await chmod(join(dir, "a.txt"), 0o700);
    const ctx = await createBuildContext({ path: dir });
    const one = await run(ctx);
    const two = await run(ctx);
    expect(one.gz.equals(two.gz)).toBe(true);
    expect(one.summary).toEqual(two.summary);
    const tar = gunzipSync(one.gz);
    expect(one.summary.sha256).toBe(`sha256:${createHash("sha256").update(tar).digest("hex")}`);
    expect(one.summary.tarBytes).toBe(tar.length);
    expect(one.summary.tarBytes).toBe(ctx.tarBytes);
    expect(one.summary.gzipBytes).toBe(one.gz.length);
    expect(one.summary.files).toBe(4);
    const m = await members(tar);
    expect(m.map((e) => e.header.name)).toEqual(["Dockerfile", "a.txt", "b/", "b/a.txt", "b/c.txt"]);
    for (const e of m) {
      expect(e.header.mtime?.getTime()).toBe(0);
      expect([e.header.uid, e.header.gid, e.header.uname, e.header.gname]).toEqual([0, 0, "", ""]);
    }
    expect(m.find((e) => e.header.name === "a.txt")?.header.mode).toBe(0o755);
    expect(m.find((e) => e.header.name === "b/a.txt")?.header.mode).toBe(0o644);
    expect(m.find((e) => e.header.name === "b/")?.header.mode).toBe(0o755);
    expect(m.find((e) => e.header.name === "b/c.txt")?.body).toBe("c");
  });

  it("hash ignores mtimes and creation order", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await files(a, { Dockerfile: "FROM x\n", "z/1": "1", "y/2": "2", m: "m" });
    await files(b, { m: "m", "y/2": "2", "z/1": "1", Dockerfile: "FROM x\n" });
    await utimes(join(b, "m"), new Date(1e12), new Date(1e12));
    const ha = await computeContextDigest({ path: a });
    const hb = await computeContextDigest({ path: b });
    expect(ha).toEqual(hb);
    await writeFile(join(b, "m"), "changed");
    expect((await computeContextDigest({ path: b })).sha256).not.toBe(ha.sha256);
  });

  it("digest() equals the hash of a completed stream", async () => {
    await files(dir, { Dockerfile: "FROM x\n", "f.bin": "x".repeat(100_000) });
    const fresh = await (await createBuildContext({ path: dir })).digest();
    const ctx = await createBuildContext({ path: dir });
    const { summary } = await run(ctx);
    expect(fresh).toEqual({ sha256: summary.sha256, tarBytes: summary.tarBytes, files: summary.files });
    expect(await ctx.digest()).toEqual(fresh);
  });

  it("keeps symlinks as symlinks, without following them", async () => {
    await files(dir, { Dockerfile: "FROM x\n", "real/f": "f" });
    await symlink("real", join(dir, "link"));
    await symlink("/etc/passwd", join(dir, "abs"));
    const { gz } = await run(await createBuildContext({ path: dir }));
    const m = await members(gunzipSync(gz));
    const byName = new Map(m.map((e) => [e.header.name, e.header]));
    expect(byName.get("link")).toMatchObject({ type: "symlink", linkname: "real", mode: 0o777 });
    expect(byName.get("abs")).toMatchObject({ type: "symlink", linkname: "/etc/passwd" });
    expect([...byName.keys()].some((n) => n.startsWith("link/"))).toBe(false);
  });

  it("a reader that releases what it read gets the memory back: a few blocks carry the whole stream, intact", async () => {
    await files(dir, { Dockerfile: "FROM x\n" });
    await writeFile(join(dir, "random.bin"), randomBytes(6 * 1024 * 1024 + 7));
    const ctx = await createBuildContext({ path: dir });
    const read = async (release: boolean) => {
      const sent = ctx.open({ compression: 0 });
      const copies: Buffer[] = [];
      const blocks = new Set<ArrayBufferLike>();
      for await (const chunk of sent.stream) {
        copies.push(Buffer.from(chunk as Buffer)); // what a pump does: copy, then hand back
        blocks.add((chunk as Buffer).buffer);
        if (release) sent.release(chunk as Buffer);
      }
      await sent.done;
      return { gz: Buffer.concat(copies), chunks: copies.length, blocks: blocks.size };
    };
    const released = await read(true);
    const kept = await read(false);
    const digest = await ctx.digest();
    for (const r of [released, kept]) {
      expect(`sha256:${createHash("sha256").update(gunzipSync(r.gz)).digest("hex")}`).toBe(digest.sha256);
    }
    expect(released.chunks).toBeGreaterThan(90);
    // The blocks buffered between the stages (≈ 10) and the gzip header, trailer and final block.
    expect(released.blocks).toBeLessThanOrEqual(16);
    expect(kept.blocks).toBeGreaterThan(90);
  });

  it("reports progress up to the exact total", async () => {
    await files(dir, { Dockerfile: "FROM x\n", big: "y".repeat(3_000_000) });
    const ctx = await createBuildContext({ path: dir });
    const seen: number[] = [];
    const { stream, done } = ctx.open({ onProgress: (p) => seen.push(p.tarBytes) });
    await collect(stream);
    const summary = await done;
    expect(seen.length).toBeGreaterThan(1);
    expect(Math.max(...seen)).toBeLessThanOrEqual(ctx.tarBytes);
    expect(summary.tarBytes).toBe(ctx.tarBytes);
  });

  it("rejects done when the consumer destroys the stream early, and can be opened again", async () => {
    await files(dir, { Dockerfile: "FROM x\n", big: "z".repeat(2_000_000) });
    const ctx = await createBuildContext({ path: dir });
    const { stream, done } = ctx.open();
    stream.once("data", () => stream.destroy());
    await expect(done).rejects.toThrow(/closed before it ended/);
    expect((await run(ctx)).summary.tarBytes).toBe(ctx.tarBytes);
  });

  it("stores long names through PAX headers", async () => {
    const long = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(80)}.txt`;
    await files(dir, { Dockerfile: "FROM x\n", [long]: "long" });
    const { gz, summary } = await run(await createBuildContext({ path: dir }));
    const m = await members(gunzipSync(gz));
    expect(m.find((e) => e.header.name === long)?.body).toBe("long");
    expect(summary.files).toBe(2);
  });

  it("fails before streaming on a missing directory or Dockerfile", async () => {
    await expect(createBuildContext({ path: join(dir, "nope") })).rejects.toThrow(InvalidInputError);
    await files(dir, { "other/Dockerfile": "FROM x\n" });
    await expect(createBuildContext({ path: dir })).rejects.toThrow(/Dockerfile "Dockerfile" not found/);
    await expect(createBuildContext({ path: dir, dockerfile: "other/Dockerfile" })).resolves.toBeDefined();
    await expect(createBuildContext({ path: dir, dockerfile: "../Dockerfile" })).rejects.toThrow(InvalidInputError);
    await expect(createBuildContext({})).rejects.toThrow(/exactly one/);
  });
});

describe(".dockerignore", () => {
  async function names(tree: Record<string, string>, dockerfile?: string): Promise<string[]> {
    await files(dir, tree);
    const { gz } = await run(await createBuildContext({ path: dir, dockerfile }));
    return (await members(gunzipSync(gz))).map((e) => e.header.name);
  }

  it("applies patterns, ! exceptions and **", async () => {
    const got = await names({
      Dockerfile: "FROM x\n",
      ".dockerignore": "# comment\n*.log\n!keep.log\n**/*.tmp\nbuild\nsecret/\n",
      "a.log": "",
      "keep.log": "",
      "sub/a.log": "", // "*.log" matches only at the root, as in Docker
      "sub/x.tmp": "",
      "sub/deep/y.tmp": "",
      "build/out": "",
      "secret/key": "",
      "src/main.c": "",
    });
    // Directories stay (empty "sub/deep/" included), as Docker sends them.
    expect(got).toEqual([".dockerignore", "Dockerfile", "keep.log", "src/", "src/main.c", "sub/", "sub/a.log", "sub/deep/"]);
  });

  it("re-includes under an excluded directory when an exception names it", async () => {
    const got = await names({
      Dockerfile: "FROM x\n",
      ".dockerignore": "dir\n!dir/keep\n",
      "dir/a": "",
      "dir/keep/x": "",
    });
    expect(got).toEqual([".dockerignore", "Dockerfile", "dir/", "dir/keep/", "dir/keep/x"]);
  });

  it("always keeps the Dockerfile and .dockerignore", async () => {
    const got = await names({ Dockerfile: "FROM x\n", ".dockerignore": "*\n", other: "" });
    expect(got).toEqual([".dockerignore", "Dockerfile"]);
  });

  it("keeps a nested Dockerfile and prefers <Dockerfile>.dockerignore", async () => {
    const got = await names(
      {
        "binder/Dockerfile": "FROM x\n",
        "binder/Dockerfile.dockerignore": "binder\ndata\n",
        ".dockerignore": "src\n",
        "binder/other": "",
        "data/x": "",
        "src/y": "",
      },
      "binder/Dockerfile",
    );
    expect(got).toEqual([".dockerignore", "binder/", "binder/Dockerfile", "src/", "src/y"]);
  });
});

describe("tar stream contexts", () => {
  const tree = [
    { name: "./Dockerfile", body: "FROM x\n" },
    { name: "src/", type: "directory" as const },
    { name: "src/run.sh", body: "#!/bin/sh\n", mode: 0o775 },
    { name: "src/link", type: "symlink" as const, linkname: "run.sh" },
  ];

  it("accepts plain and gzip tars, with the same hash as the equivalent directory", async () => {
    const plain = await makeTar(tree);
    const fromPlain = await createBuildContext({ context: Readable.from([plain]) });
    const fromGzip = await createBuildContext({ context: Readable.from([gzipSync(plain)]) });
    const a = await run(fromPlain);
    const b = await run(fromGzip);
    expect(a.summary.sha256).toBe(b.summary.sha256);
    expect(a.gz.equals(b.gz)).toBe(true);
    await files(dir, { Dockerfile: "FROM x\n", "src/run.sh": "#!/bin/sh\n" });
    await chmod(join(dir, "src/run.sh"), 0o755);
    await symlink("run.sh", join(dir, "src/link"));
    expect((await computeContextDigest({ path: dir })).sha256).toBe(a.summary.sha256);
    await fromPlain.dispose();
    await fromGzip.dispose();
  });

  it("can be streamed again and disposed of", async () => {
    const ctx = await createBuildContext({ context: Readable.from([await makeTar(tree)]), tmpDir: dir });
    const a = await run(ctx);
    const b = await run(ctx);
    expect(a.gz.equals(b.gz)).toBe(true);
    await ctx.dispose();
    expect(() => ctx.open()).toThrow(InvalidInputError);
  });

  it("sorts entries, adds missing parents and turns hard links into files", async () => {
    const tar = await makeTar([
      { name: "z/file", body: "zz" },
      { name: "Dockerfile", body: "FROM x\n" },
      { name: "a/hard", type: "link", linkname: "z/file" },
    ]);
    const ctx = await createBuildContext({ context: Readable.from([tar]) });
    const m = await members(gunzipSync((await run(ctx)).gz));
    expect(m.map((e) => e.header.name)).toEqual(["Dockerfile", "a/", "a/hard", "z/", "z/file"]);
    expect(m.find((e) => e.header.name === "a/hard")).toMatchObject({ body: "zz", header: { type: "file" } });
    await ctx.dispose();
  });

  it.each([
    ["a path with ..", [{ name: "a/../../etc/passwd", body: "x" }], /contains "\.\."/],
    ["an absolute path", [{ name: "/etc/passwd", body: "x" }], /absolute path/],
    ["an absolute symlink", [{ name: "l", type: "symlink" as const, linkname: "/etc/passwd" }], /symlink to an absolute/],
    ["an escaping symlink", [{ name: "d/l", type: "symlink" as const, linkname: "../../x" }], /escaping/],
    ["an escaping hard link", [{ name: "h", type: "link" as const, linkname: "../x" }], /hard link/],
  ])("rejects %s, naming the entry", async (_what, bad, message) => {
    const tar = await makeTar([{ name: "Dockerfile", body: "FROM x\n" }, ...bad]);
    const err = await createBuildContext({ context: Readable.from([tar]), tmpDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toMatch(message);
    // The temporary spool is gone.
    await expect((await import("node:fs/promises")).readdir(dir)).resolves.toEqual([]);
  });

  it("requires the Dockerfile and a non-empty, readable tar", async () => {
    const noDockerfile = await makeTar([{ name: "x", body: "x" }]);
    await expect(createBuildContext({ context: Readable.from([noDockerfile]) })).rejects.toThrow(/Dockerfile/);
    await expect(createBuildContext({ context: Readable.from([]) })).rejects.toThrow(/empty/);
    await expect(createBuildContext({ context: Readable.from([Buffer.from("not a tar at all".repeat(64))]) })).rejects.toThrow(
      InvalidInputError,
    );
    const gzTruncated = gzipSync(await makeTar(tree)).subarray(0, 40);
    await expect(createBuildContext({ context: Readable.from([gzTruncated]) })).rejects.toThrow(InvalidInputError);
  });

  it("finds a Dockerfile at a custom path", async () => {
    const tar = await makeTar([{ name: "binder/Dockerfile", body: "FROM x\n" }]);
    const ctx = await createBuildContext({ context: Readable.from([tar]), dockerfile: "binder/Dockerfile" });
    expect(ctx.dockerfile).toBe("binder/Dockerfile");
    await ctx.dispose();
  });

  it("reads Docker's own tar layout unchanged in content", async () => {
    const body = await readFile(new URL(import.meta.url));
    const tar = await makeTar([{ name: "Dockerfile", body: "FROM x\n" }, { name: "t.ts", body: body.toString() }]);
    const ctx = await createBuildContext({ context: Readable.from([tar]) });
    const m = await members(gunzipSync((await run(ctx)).gz));
    expect(m.find((e) => e.header.name === "t.ts")?.body).toBe(body.toString());
    await ctx.dispose();
  });
});

describe("tarBlocks", () => {
  async function entriesOf(tree: Record<string, string>) {
    await files(dir, tree);
    return (await listDirectory(dir, "Dockerfile")).entries;
  }

  it("yields full blocks of the given size (the last one shorter) whose bytes do not depend on the size", async () => {
    const entries = await entriesOf({ Dockerfile: "FROM x\n", "a/b.txt": "b".repeat(1500), "c.bin": "c".repeat(70_000) });
    const whole = Buffer.concat([...tarBlocks(entries, 1024 * 1024)]);
    expect(whole.length).toBe(tarSize(entries));
    for (const size of [512, 7 * 512, 1000, 65_536]) {
      const blocks = [...tarBlocks(entries, size)];
      expect(blocks.slice(0, -1).every((b) => b.length === size)).toBe(true);
      expect(Buffer.concat(blocks).equals(whole)).toBe(true);
    }
    const m = await members(whole);
    expect(m.map((e) => e.header.name)).toEqual(["Dockerfile", "a/", "a/b.txt", "c.bin"]);
    expect(m.find((e) => e.header.name === "c.bin")?.body).toBe("c".repeat(70_000));
  });

  it("throws InvalidInputError when a file shrank after listing, and closes what it opened", async () => {
    const entries = await entriesOf({ Dockerfile: "FROM x\n", "big.txt": "x".repeat(10_000) });
    await writeFile(join(dir, "big.txt"), "x".repeat(100));
    const openFiles = readdirSync("/proc/self/fd").length;
    expect(() => [...tarBlocks(entries, 4096)]).toThrow(InvalidInputError);
    expect(readdirSync("/proc/self/fd").length).toBe(openFiles);
    expect(() => [...tarBlocks(entries, 4096)]).toThrow(/big\.txt.*shrank.*100 of 10000 bytes/);
  });

  it("throws InvalidInputError naming a file that vanished after listing", async () => {
    const entries = await entriesOf({ Dockerfile: "FROM x\n", "gone.txt": "x" });
    await rm(join(dir, "gone.txt"));
    expect(() => [...tarBlocks(entries)]).toThrow(/cannot read "gone\.txt"/);
  });
});
