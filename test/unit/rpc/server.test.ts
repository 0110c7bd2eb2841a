import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { BuildOptions, Container, ContainerStatus, RunOptions } from "../../../src/contract.js";
import { BuildError, ContainerNotFoundError, Image, InvalidInputError } from "../../../src/index.js";
import { encodeError, parseRequest, RpcError, type RpcMessage } from "../../../src/rpc/protocol.js";
import { RpcServer, type RpcEngine } from "../../../src/rpc/server.js";

class FakeContainer implements Container {
  readonly id = "kce-run-x-1";
  status: ContainerStatus = "running";
  exitcode: number | null = 0;
  reason: string | null = null;
  readonly ports = { "8888/tcp": { host: "127.0.0.1", port: 9999 } };
  removed = false;
  async reload(): Promise<void> {
    if (this.removed) throw new ContainerNotFoundError(`container ${this.id} was removed`);
  }
  async logs(options: { timestamps?: boolean; since?: string } = {}): Promise<string> {
    return `${options.timestamps ? "T " : ""}hello since=${options.since ?? "-"}\n`;
  }
  async *streamLogs(): AsyncIterable<string> {
    yield "a\n";
    yield "b\n";
    this.status = "exited";
    this.exitcode = 3;
  }
  async kill(): Promise<void> {
    this.status = "exited";
    this.exitcode = 137;
  }
  async stop(options: { timeout?: number } = {}): Promise<void> {
    this.status = "exited";
    this.exitcode = options.timeout ?? -1;
  }
  async wait(): Promise<{ exitCode: number }> {
    return { exitCode: this.exitcode ?? 0 };
  }
  async remove(): Promise<void> {
    this.removed = true;
  }
}

class FakeEngine implements RpcEngine {
  builds: BuildOptions[] = [];
  runs: [string, RunOptions | undefined][] = [];
  container = new FakeContainer();
  contextBytes: Buffer | null = null;
  build(options: BuildOptions): AsyncIterable<string> & { result: Promise<unknown> } {
    this.builds.push(options);
    const engine = this;
    let resolve!: (v: unknown) => void;
    const result = new Promise((r) => (resolve = r));
    return {
      result,
      async *[Symbol.asyncIterator]() {
        if (options.context) {
          const chunks: Buffer[] = [];
          for await (const chunk of options.context as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
          engine.contextBytes = Buffer.concat(chunks);
        }
        options.onProgress?.({ kind: "phase", message: "started" });
        yield "step 1\n";
        if (options.tag === "bad") throw new BuildError("RUN false failed", { reason: "failed", exitCode: 1, logTail: ["oops"] });
        if (options.tag === "forever") {
          await new Promise((_, reject) => options.signal?.addEventListener("abort", () => reject(new Error("aborted"))));
        }
        yield "step 2\n";
        resolve({ image: `reg/${options.tag}`, digest: "sha256:abc", pushed: true, pod: "p" });
      },
    };
  }
  async inspectImage(ref: string): Promise<Image | null> {
    return ref === "missing" ? null : new Image({ tags: [`${ref}`], config: { WorkingDir: "/w" } });
  }
  async images(): Promise<Image[]> {
    return [new Image({ tags: ["a:latest"], config: null })];
  }
  push(ref: string): AsyncIterable<string> {
    return (async function* () {
      yield `pushing ${ref}\n`;
    })();
  }
  async run(ref: string, options?: RunOptions): Promise<Container> {
    if (ref === "bad") throw new InvalidInputError("bad ref");
    this.runs.push([ref, options]);
    return this.container;
  }
}

function harness(engine = new FakeEngine()) {
  const messages: RpcMessage[] = [];
  const warnings: string[] = [];
  const server = new RpcServer({ engine, send: (m) => void messages.push(m), log: (m) => warnings.push(m), version: "9.9.9" });
  const settled = async (id: number | string): Promise<RpcMessage[]> => {
    for (let i = 0; i < 200; i++) {
      const mine = messages.filter((m) => m.id === id);
      if (mine.some((m) => "result" in m || "error" in m)) return mine;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no final message for ${id}: ${JSON.stringify(messages)}`);
  };
  const call = async (id: number, method: string, params?: object): Promise<RpcMessage[]> => {
    server.accept(JSON.stringify({ id, method, ...(params ? { params } : {}) }));
    return settled(id);
  };
  return { engine, server, messages, warnings, call, settled };
}

describe("parseRequest", () => {
  it("reads id, method and params", () => {
    expect(parseRequest('{"id":1,"method":"images"}')).toEqual({ id: 1, method: "images" });
    expect(parseRequest('{"id":"a","method":"run","params":{"ref":"x"}}')).toEqual({ id: "a", method: "run", params: { ref: "x" } });
  });
  it.each(["nope", "[]", '{"method":"x"}', '{"id":1}', '{"id":1,"method":"x","params":[]}'])("rejects %s", (line) => {
    expect(() => parseRequest(line)).toThrow(RpcError);
  });
});

describe("encodeError", () => {
  it("sends the class, its chain and the error's fields", () => {
    expect(encodeError(new BuildError("boom", { reason: "failed", exitCode: 2, logTail: ["x"] }))).toEqual({
      type: "BuildError",
      types: ["BuildError", "ContainerEngineError", "Error"],
      message: "boom",
      reason: "failed",
      exitCode: 2,
      logTail: ["x"],
    });
    expect(encodeError("str")).toEqual({ type: "Error", types: ["Error"], message: "str" });
  });
});

describe("RpcServer", () => {
  it("hello names the protocol and version", async () => {
    const h = harness();
    expect(await h.call(1, "hello")).toEqual([{ id: 1, result: { protocol: 1, version: "9.9.9" } }]);
  });

  it("build streams lines and progress, then the result", async () => {
    const h = harness();
    const out = await h.call(1, "build", { tag: "t", path: "/ctx", dockerfile: "Dockerfile", buildArgs: { A: "1" }, push: false, load: true, platform: null, extra: 1 });
    expect(out).toEqual([
      { id: 1, progress: { kind: "phase", message: "started" } },
      { id: 1, line: "step 1\n" },
      { id: 1, line: "step 2\n" },
      { id: 1, result: { image: "reg/t", digest: "sha256:abc", pushed: true } },
    ]);
    const given = h.engine.builds[0] as unknown as Record<string, unknown>;
    expect(given).toMatchObject({ tag: "t", path: "/ctx", dockerfile: "Dockerfile", buildArgs: { A: "1" }, push: false, load: true, extra: 1 });
    expect(given).not.toHaveProperty("platform"); // null means absent
  });

  it("build takes the context from a file or base64", async () => {
    const h = harness();
    const dir = mkdtempSync(join(tmpdir(), "kce-rpc-"));
    writeFileSync(join(dir, "ctx.tar"), "TARBYTES");
    await h.call(1, "build", { tag: "t", contextFile: join(dir, "ctx.tar") });
    expect(h.engine.contextBytes?.toString()).toBe("TARBYTES");
    await h.call(2, "build", { tag: "t", contextBase64: Buffer.from("B64").toString("base64") });
    expect(h.engine.contextBytes?.toString()).toBe("B64");
    const both = await h.call(3, "build", { tag: "t", contextFile: "x", contextBase64: "eA==" });
    expect(both.at(-1)).toMatchObject({ error: { type: "RpcError" } });
  });

  it("a failed build ends with BuildError after the lines it printed", async () => {
    const h = harness();
    const out = await h.call(1, "build", { tag: "bad", path: "/ctx" });
    expect(out.filter((m) => "line" in m)).toEqual([{ id: 1, line: "step 1\n" }]);
    expect(out.at(-1)).toEqual({
      id: 1,
      error: { type: "BuildError", types: ["BuildError", "ContainerEngineError", "Error"], message: "RUN false failed", reason: "failed", exitCode: 1, logTail: ["oops"] },
    });
  });

  it("cancel aborts a build in flight: it ends with CancelledError", async () => {
    const h = harness();
    h.server.accept(JSON.stringify({ id: 1, method: "build", params: { tag: "forever", path: "/ctx" } }));
    await new Promise((r) => setTimeout(r, 20));
    expect(h.engine.builds[0]?.signal?.aborted).toBe(false);
    expect(await h.call(2, "cancel", { id: 1 })).toEqual([{ id: 2, result: null }]);
    const out = await h.settled(1);
    expect(out.at(-1)).toMatchObject({ error: { type: "CancelledError" } });
    expect(h.engine.builds[0]?.signal?.aborted).toBe(true);
  });

  it("inspectImage returns the image or null; images a list", async () => {
    const h = harness();
    expect(await h.call(1, "inspectImage", { ref: "x:1" })).toEqual([{ id: 1, result: { tags: ["x:1"], config: { WorkingDir: "/w" } } }]);
    expect(await h.call(2, "inspectImage", { ref: "missing" })).toEqual([{ id: 2, result: null }]);
    expect(await h.call(3, "images")).toEqual([{ id: 3, result: [{ tags: ["a:latest"], config: null }] }]);
    expect((await h.call(4, "inspectImage", {})).at(-1)).toMatchObject({ error: { type: "RpcError" } });
  });

  it("push streams lines", async () => {
    const h = harness();
    expect(await h.call(1, "push", { ref: "r" })).toEqual([{ id: 1, line: "pushing r\n" }, { id: 1, result: null }]);
  });

  it("run returns a container snapshot; container methods refer to it by id", async () => {
    const h = harness();
    const run = await h.call(1, "run", { ref: "img", command: ["sh"], ports: { "8888/tcp": ["127.0.0.1", 9999] }, volumes: null, detach: true });
    const snap = { id: "kce-run-x-1", status: "running", exitcode: 0, reason: null, ports: { "8888/tcp": { host: "127.0.0.1", port: 9999 } } };
    expect(run).toEqual([{ id: 1, result: snap }]);
    expect(h.engine.runs[0]?.[1]).toMatchObject({ command: ["sh"], ports: { "8888/tcp": ["127.0.0.1", 9999] } });
    expect(h.engine.runs[0]?.[1]).not.toHaveProperty("volumes");
    expect(h.engine.runs[0]?.[1]).not.toHaveProperty("detach");
    expect(h.warnings).toEqual(["run: ignoring unknown option detach"]);
    const c = { container: "kce-run-x-1" };
    expect(await h.call(2, "container.logs", { ...c, timestamps: true, since: "S" })).toEqual([{ id: 2, result: "T hello since=S\n" }]);
    expect(await h.call(3, "container.streamLogs", c)).toEqual([
      { id: 3, line: "a\n" },
      { id: 3, line: "b\n" },
      { id: 3, result: { ...snap, status: "exited", exitcode: 3 } },
    ]);
    expect(await h.call(4, "container.wait", c)).toEqual([{ id: 4, result: { exitCode: 3, container: { ...snap, status: "exited", exitcode: 3 } } }]);
    expect((await h.call(5, "container.stop", { ...c, timeout: 5 })).at(-1)).toMatchObject({ result: { exitcode: 5 } });
    expect((await h.call(6, "container.kill", { ...c, signal: "KILL" })).at(-1)).toMatchObject({ result: { exitcode: 137 } });
    expect((await h.call(7, "container.remove", c)).at(-1)).toMatchObject({ result: { id: "kce-run-x-1" } });
    expect((await h.call(8, "container.reload", c)).at(-1)).toMatchObject({ error: { type: "ContainerNotFoundError" } });
    expect((await h.call(9, "container.reload", { container: "other" })).at(-1)).toMatchObject({ error: { type: "RpcError" } });
  });

  it("engine errors keep their class; unknown methods and bad lines are RpcErrors", async () => {
    const h = harness();
    expect((await h.call(1, "run", { ref: "bad" })).at(-1)).toMatchObject({
      error: { type: "InvalidInputError", types: ["InvalidInputError", "ContainerEngineError", "Error"], message: "bad ref" },
    });
    expect((await h.call(2, "frobnicate")).at(-1)).toMatchObject({ error: { type: "RpcError", message: 'unknown method "frobnicate"' } });
    h.server.accept("not json");
    expect(h.messages.at(-1)).toMatchObject({ id: null, error: { type: "RpcError" } });
  });

  it("serve cancels what is in flight when its input ends", async () => {
    const h = harness();
    async function* lines() {
      yield JSON.stringify({ id: 1, method: "build", params: { tag: "forever", path: "/ctx" } });
      await new Promise((r) => setTimeout(r, 20));
    }
    await h.server.serve(lines());
    expect(h.engine.builds[0]?.signal?.aborted).toBe(true);
    expect(h.messages.at(-1)).toMatchObject({ id: 1, error: { type: "CancelledError" } });
  });
});
