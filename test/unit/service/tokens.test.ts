import { mkdirSync, mkdtempSync, rmSync, symlinkSync, renameSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { authenticate, bearerToken, DirectoryTokens, StaticTokens, type TokenSource } from "../../../src/service/tokens.js";

describe("bearerToken", () => {
  it.each<[string | undefined, string | null]>([
    ["Bearer abc123", "abc123"],
    ["bearer abc123", "abc123"],
    ["BEARER abc123", "abc123"],
    ["token abc123", "abc123"], // JupyterHub's form
    ["Token abc123", "abc123"],
    ["Bearer   abc123  ", "abc123"],
    ["Bearer\tabc123", "abc123"],
    ["Bearer a.b-c_d~e+f/g=", "a.b-c_d~e+f/g="],
    ["Bearer a b", null],
    ["Bearer", null],
    ["Bearer ", null],
    ["Bearerabc123", null],
    [" Bearer abc123", null],
    ["Basic dXNlcjpwYXNz", null],
    ["abc123", null],
    ["", null],
    [undefined, null],
  ])("%j → %j", (header, token) => {
    expect(bearerToken(header)).toBe(token);
  });
});

describe("authenticate", () => {
  const source = new StaticTokens({ ci: "s3cret-ci", hub: "  s3cret-hub\n", other: "x" });

  it.each<[string | undefined, ReturnType<typeof authenticate>]>([
    ["Bearer s3cret-ci", { ok: true, tokenName: "ci" }],
    ["token s3cret-ci", { ok: true, tokenName: "ci" }],
    ["Bearer s3cret-hub", { ok: true, tokenName: "hub" }], // values are trimmed
    ["Bearer x", { ok: true, tokenName: "other" }],
    ["Bearer s3cret-CI", { ok: false, status: 403, message: "the token is not valid for this service" }],
    ["Bearer s3cret-c", { ok: false, status: 403, message: "the token is not valid for this service" }],
    ["Bearer s3cret-ci-", { ok: false, status: 403, message: "the token is not valid for this service" }],
    ["Basic s3cret-ci", { ok: false, status: 401, message: "authentication required: send 'Authorization: Bearer <token>'" }],
    ["", { ok: false, status: 401, message: "authentication required: send 'Authorization: Bearer <token>'" }],
    [undefined, { ok: false, status: 401, message: "authentication required: send 'Authorization: Bearer <token>'" }],
  ])("%j → %j", (header, expected) => {
    expect(authenticate(header, source)).toEqual(expected);
  });

  it("refuses everyone when there are no tokens", () => {
    expect(authenticate("Bearer anything", new StaticTokens({}))).toEqual({ ok: false, status: 403, message: "the token is not valid for this service" });
  });

  it("names the first token when two names share a value", () => {
    expect(authenticate("Bearer same", new StaticTokens({ first: "same", second: "same" }))).toEqual({ ok: true, tokenName: "first" });
  });

  it("never puts the token into its answer", () => {
    const result = authenticate("Bearer not-the-token-123", source);
    expect(JSON.stringify(result)).not.toContain("not-the-token-123");
  });

  it("reads the source's tokens on every call (rotation)", () => {
    let current = new Map<string, Buffer>(new StaticTokens({ a: "one" }).tokens());
    const rotating: TokenSource = { tokens: () => current };
    expect(authenticate("Bearer one", rotating)).toEqual({ ok: true, tokenName: "a" });
    current = new Map(new StaticTokens({ a: "two" }).tokens());
    expect(authenticate("Bearer one", rotating).ok).toBe(false);
    expect(authenticate("Bearer two", rotating)).toEqual({ ok: true, tokenName: "a" });
  });
});

describe("StaticTokens", () => {
  it("keeps names and only digests of the values", () => {
    const tokens = new StaticTokens({ a: "value-a", b: "value-b" }).tokens();
    expect([...tokens.keys()]).toEqual(["a", "b"]);
    for (const digest of tokens.values()) {
      expect(digest).toHaveLength(32); // SHA-256
      expect(digest.toString("utf8")).not.toContain("value");
    }
  });
});

describe("DirectoryTokens", () => {
  let dir: string;
  let now: number;
  const clock = (): number => now;
  /** Writes a file with a given mtime (seconds), so a change never depends on the file system's clock. */
  const write = (name: string, content: string, mtime: number): void => {
    writeFileSync(join(dir, name), content);
    utimesSync(join(dir, name), mtime, mtime);
  };
  const can = (source: TokenSource, token: string): string | null => {
    const r = authenticate(`Bearer ${token}`, source);
    return r.ok ? r.tokenName : null;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "kce-tokens-"));
    now = 1_000_000;
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads one token per file, named after the file; skips dot files and empty files; trims values", () => {
    write("ci", "token-ci\n", 1000);
    write("hub", "  token-hub  ", 1000);
    write("empty", "\n", 1000);
    write(".hidden", "token-hidden", 1000);
    mkdirSync(join(dir, "..data"));
    const source = new DirectoryTokens(dir, 5_000, clock);
    expect([...source.tokens().keys()]).toEqual(["ci", "hub"]);
    expect([can(source, "token-ci"), can(source, "token-hub"), can(source, "token-hidden"), can(source, "")]).toEqual(["ci", "hub", null, null]);
  });

  it("has no tokens in an empty directory", () => {
    expect(new DirectoryTokens(dir, 5_000, clock).tokens().size).toBe(0);
  });

  it("re-reads a changed directory only once recheckMs has passed", () => {
    write("ci", "old", 1000);
    const source = new DirectoryTokens(dir, 5_000, clock);
    expect(can(source, "old")).toBe("ci");
    write("ci", "new", 2000);
    write("extra", "added", 2000);
    now += 4_999;
    expect([can(source, "old"), can(source, "new"), can(source, "added")]).toEqual(["ci", null, null]);
    now += 1;
    expect([can(source, "old"), can(source, "new"), can(source, "added")]).toEqual([null, "ci", "extra"]);
  });

  it("sees a removed file", () => {
    write("a", "token-a", 1000);
    write("b", "token-b", 1000);
    const source = new DirectoryTokens(dir, 1_000, clock);
    expect(can(source, "token-b")).toBe("b");
    rmSync(join(dir, "b"));
    now += 1_000;
    expect([can(source, "token-a"), can(source, "token-b")]).toEqual(["a", null]);
  });

  it("keeps its map while neither the listing nor the mtimes changed", () => {
    write("ci", "token", 1000);
    const source = new DirectoryTokens(dir, 10, clock);
    const first = source.tokens();
    now += 10_000;
    expect(source.tokens()).toBe(first);
    write("ci", "token", 1001);
    now += 10_000;
    expect(source.tokens()).not.toBe(first);
  });

  it("follows a Kubernetes Secret update (the ..data symlink swapped to a new directory)", () => {
    const version = (name: string, token: string, mtime: number): void => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, "ci"), token);
      utimesSync(join(dir, name, "ci"), mtime, mtime);
    };
    version("..2024_01_01", "first", 1000);
    symlinkSync("..2024_01_01", join(dir, "..data"));
    symlinkSync(join("..data", "ci"), join(dir, "ci"));
    const source = new DirectoryTokens(dir, 5_000, clock);
    expect([...source.tokens().keys()]).toEqual(["ci"]);
    expect(can(source, "first")).toBe("ci");

    version("..2024_02_01", "second", 2000);
    symlinkSync("..2024_02_01", join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data")); // atomic, as the kubelet does
    rmSync(join(dir, "..2024_01_01"), { recursive: true });
    now += 5_000;
    expect([can(source, "first"), can(source, "second")]).toEqual([null, "ci"]);
  });

  it("fails loudly when the directory is missing", () => {
    expect(() => new DirectoryTokens(join(dir, "missing"), 5_000, clock).tokens()).toThrow(/ENOENT/);
  });
});
