/**
 * A caller's tar stream (plain or gzip, detected by magic bytes) → validated, normalized entries whose contents
 * are spooled to one temporary file. Spooling lets every check (`..`, absolute or escaping links, the
 * Dockerfile's presence) finish before anything is sent to the cluster, and lets the context be streamed again
 * (a retried upload) and hashed up front, with bounded memory.
 */
import { once } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import { posix } from "node:path";
import { Readable, pipeline } from "node:stream";
import { finished } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { extract, type Header } from "tar-stream";
import { InvalidInputError } from "../errors.js";
import { normalizeEntries, normalizeMode, type ContextEntry } from "./tar-format.js";

/** What reading a tar stream found. */
export interface TarListing {
  entries: ContextEntry[];
  /** Skipped entries (devices, FIFOs), one message each. */
  warnings: string[];
}

/** True when the bytes start with the gzip magic number (1f 8b). */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Normalizes a member name: strips "./" and repeated slashes; null for the root itself. */
function memberPath(name: string): string | null {
  if (name.startsWith("/")) throw new InvalidInputError(`tar entry ${JSON.stringify(name)} has an absolute path`);
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new InvalidInputError(`tar entry ${JSON.stringify(name)} contains ".."`);
  return parts.length === 0 ? null : parts.join("/");
}

function checkSymlink(path: string, target: string): void {
  if (target === "") throw new InvalidInputError(`tar entry ${JSON.stringify(path)} is a symlink with no target`);
  if (target.startsWith("/")) {
    throw new InvalidInputError(`tar entry ${JSON.stringify(path)} is a symlink to an absolute path (${target})`);
  }
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  if (resolved === ".." || resolved.startsWith("../")) {
    throw new InvalidInputError(`tar entry ${JSON.stringify(path)} is a symlink escaping the context (${target})`);
  }
}

/** Yields the stream's chunks as Buffers, first deciding from the first bytes whether to gunzip. */
async function decodedChunks(input: NodeJS.ReadableStream): Promise<Readable> {
  const iterator = (input as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  let ended = false;
  while (headBytes < 2) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    const chunk = typeof next.value === "string" ? Buffer.from(next.value) : Buffer.from(next.value);
    head.push(chunk);
    headBytes += chunk.length;
  }
  if (headBytes === 0) throw new InvalidInputError("the build context tar stream is empty");
  const gzip = isGzip(Buffer.concat(head));
  async function* rest(): AsyncGenerator<Buffer> {
    yield* head;
    if (ended) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      yield typeof next.value === "string" ? Buffer.from(next.value) : next.value;
    }
  }
  const raw = Readable.from(rest(), { objectMode: false });
  if (!gzip) return raw;
  // Errors of either stage reach the returned stream (pipeline destroys it with them), where they are read.
  return pipeline(raw, createGunzip(), () => undefined);
}

/** The temporary file holding every file's content, back to back; written with backpressure. */
class Spool {
  private readonly out: WriteStream;
  private failure: Error | null = null;
  offset = 0;
  constructor(readonly path: string) {
    this.out = createWriteStream(path);
    // Recorded here and rethrown by the next write or close: an unheard 'error' event would crash the process.
    this.out.on("error", (e: Error) => {
      this.failure = e;
    });
  }
  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.offset += chunk.length;
    if (!this.out.write(chunk)) await once(this.out, "drain");
  }
  async close(): Promise<void> {
    if (!this.out.destroyed) {
      this.out.end();
      await finished(this.out).catch((e: Error) => {
        this.failure ??= e;
      });
    }
    if (this.failure) {
      throw new InvalidInputError(`cannot spool the build context to ${this.path}: ${this.failure.message}`, {
        cause: this.failure,
      });
    }
  }
}

/** Feeds `source` into the tar extractor, honouring its backpressure; errors destroy the extractor. */
async function feed(source: Readable, sink: ReturnType<typeof extract>): Promise<void> {
  try {
    for await (const chunk of source) {
      if (sink.destroyed) return;
      if (!sink.write(chunk as Buffer)) {
        await new Promise<void>((resolve) => {
          const settle = (): void => {
            sink.off("drain", settle);
            sink.off("close", settle);
            resolve();
          };
          sink.on("drain", settle);
          sink.on("close", settle);
        });
      }
    }
    sink.end(undefined);
  } catch (cause) {
    sink.destroy(
      new InvalidInputError(`the build context tar stream could not be read: ${String(cause)}`, { cause }),
    );
  } finally {
    source.destroy();
  }
}

/**
 * Reads a tar stream, validates every member and spools file contents into `spoolFile`. Throws
 * `InvalidInputError` naming the entry for absolute paths, `..`, absolute or escaping symlinks, hard links to
 * anything but an earlier file, and a missing `dockerfile`. Hard links become regular files (sorted order
 * cannot keep a link after its target); devices and FIFOs are skipped with a warning.
 */
export async function readTarStream(
  input: NodeJS.ReadableStream,
  dockerfile: string,
  spoolFile: string,
): Promise<TarListing> {
  const source = await decodedChunks(input);
  const ex = extract();
  const feeding = feed(source, ex);
  const spool = new Spool(spoolFile);
  const byPath = new Map<string, ContextEntry>();
  const warnings: string[] = [];
  let failed = false;
  try {
    for await (const member of ex) {
      const header: Header = member.header;
      const path = memberPath(header.name);
      const type = header.type ?? "file";
      if (path === null) {
        member.resume();
        continue;
      }
      if (type === "file" || type === "contiguous-file") {
        const start = spool.offset;
        for await (const chunk of member) await spool.write(chunk as Buffer);
        const size = spool.offset - start;
        const mode = normalizeMode("file", header.mode ?? 0o644);
        byPath.set(path, { path, type: "file", mode, size, source: { file: spoolFile, offset: start } });
        continue;
      }
      member.resume();
      if (type === "directory") {
        byPath.set(path, { path, type: "directory", mode: 0o755, size: 0 });
      } else if (type === "symlink") {
        const target = header.linkname ?? "";
        checkSymlink(path, target);
        byPath.set(path, { path, type: "symlink", mode: 0o777, size: 0, linkname: target });
      } else if (type === "link") {
        const raw = header.linkname ?? "";
        const target = raw.startsWith("/") || raw.split("/").includes("..") ? null : memberPath(raw);
        const linked = target === null ? undefined : byPath.get(target);
        if (!linked || linked.type !== "file") {
          throw new InvalidInputError(
            `tar entry ${JSON.stringify(header.name)} is a hard link to ${JSON.stringify(raw)}, which is not an earlier file inside the context`,
          );
        }
        byPath.set(path, { ...linked, path });
      } else {
        warnings.push(`skipped tar entry ${JSON.stringify(header.name)}: ${type} entries are not sent to builders`);
      }
    }
  } catch (cause) {
    failed = true;
    ex.destroy();
    throw cause instanceof InvalidInputError
      ? cause
      : new InvalidInputError(`the build context is not a valid tar stream: ${String(cause)}`, { cause });
  } finally {
    await feeding;
    // After a failure the spool is discarded anyway; its own error must not hide the first one.
    if (failed) await spool.close().catch(() => undefined);
    else await spool.close();
  }
  const df = byPath.get(dockerfile);
  if (!df || (df.type !== "file" && df.type !== "symlink")) {
    throw new InvalidInputError(`Dockerfile ${JSON.stringify(dockerfile)} not found in the build context tar`);
  }
  return { entries: normalizeEntries(byPath.values()), warnings };
}
