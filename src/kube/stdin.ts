/**
 * Streams a byte source into a container's stdin over the websocket API (attach or exec) with bounded
 * memory: the source is read only while less than `highWaterMark` bytes are in flight. Negotiates
 * `v5.channel.k8s.io` (stdin can be closed on its own) and falls back to `v4.channel.k8s.io`, where closing
 * stdin means closing the session (for exec the exit status is then lost: `exitCode` null).
 */
import type { Readable } from "node:stream";
import { closeFrame, parseExecStatus, PROTOCOL_V4, PROTOCOL_V5, STATUS, STDERR, STDIN, STDOUT, supportsHalfClose, type ExecStatus, type Frame } from "./channel.js";
import { KubernetesApiError } from "../errors.js";
import type { KubeClient } from "./client.js";
import { ChannelSession, type KeepAliveOptions } from "./session.js";

/** Largest stdin message, bytes. */
const MAX_FRAME = 128 * 1024;

/** Common options of {@link attachStdin} and {@link execInPod}. */
export interface StdinTarget extends KeepAliveOptions {
  /** Default: the client's namespace. */
  namespace?: string;
  pod: string;
  container: string;
  /** Called after each chunk with the total of payload bytes handed to the socket. */
  onProgress?: (bytesSent: number) => void;
  /** Aborting closes the socket; the call rejects with CancelledError. */
  signal?: AbortSignal;
  /** Bytes in flight before reading pauses (default 4 MiB). */
  highWaterMark?: number;
  /**
   * Called with each chunk of the source once it was copied into the socket's frames: the source may reuse
   * its memory (a build context's `release`).
   */
  releaseChunk?: (chunk: Buffer) => void;
}

/** What a stdin transfer did. */
export interface StdinResult {
  /** Payload bytes written to the socket (all of the source on success). */
  bytesSent: number;
  /** The agreed subprotocol: `v5.channel.k8s.io` or `v4.channel.k8s.io`. */
  protocol: string;
}

/** Options of {@link attachStdin}. */
export interface AttachOptions extends StdinTarget {
  /** The bytes to deliver; EOF closes the container's stdin. */
  source: Readable | AsyncIterable<Uint8Array>;
  /**
   * After stdin is closed, wait this long for the server to end the session before closing it ourselves,
   * ms (default 30 000). Closing early could drop stdin still buffered between API server and kubelet.
   */
  sessionEndTimeoutMs?: number;
}

/** Options of {@link execInPod}. */
export interface ExecOptions extends StdinTarget {
  command: string[];
  /** Fed to the command's stdin, then closed; no stdin when absent. */
  source?: Readable | AsyncIterable<Uint8Array>;
  /** Keep at most this many bytes of stdout and of stderr (the last ones), default 1 MiB. */
  maxOutputBytes?: number;
  /** Called with the command's output as it arrives (besides the kept tails). */
  onOutput?: (stream: "stdout" | "stderr", data: Buffer) => void;
}

/** What a command did. */
export interface ExecResult extends StdinResult {
  /** 0, the non-zero exit code, or null when unknown (v4 with stdin: closing stdin closed the session). */
  exitCode: number | null;
  status: ExecStatus | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Keeps the last `limit` bytes written. */
class TailBuffer {
  private parts: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(b: Buffer): void {
    this.parts.push(Buffer.from(b));
    this.size += b.length;
    while (this.size - (this.parts[0]?.length ?? 0) >= this.limit && this.parts.length > 1) {
      this.size -= this.parts.shift()?.length ?? 0;
    }
  }
  value(): Buffer {
    const all = Buffer.concat(this.parts);
    return all.subarray(Math.max(0, all.length - this.limit));
  }
}

function podPath(client: KubeClient, t: StdinTarget, sub: string): string {
  const ns = encodeURIComponent(t.namespace ?? client.namespace);
  return `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(t.pod)}/${sub}`;
}

/**
 * Pumps the source into channel 0 with backpressure; returns the bytes sent. `progress.exhausted` turns true
 * once the source has ended and every byte of it was handed to the socket.
 */
async function pump(
  session: ChannelSession,
  source: AsyncIterable<Uint8Array>,
  options: Pick<StdinTarget, "onProgress" | "releaseChunk">,
  progress: { sent: number; exhausted: boolean } = { sent: 0, exhausted: false },
): Promise<number> {
  let sent = 0;
  for await (const chunk of source) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let off = 0; off < buf.length; off += MAX_FRAME) {
      const piece = buf.subarray(off, Math.min(buf.length, off + MAX_FRAME));
      session.sendOnChannel(STDIN, piece); // copies
      sent += piece.length;
      progress.sent = sent;
      await session.belowHighWater();
    }
    options.releaseChunk?.(buf);
    options.onProgress?.(sent);
  }
  progress.exhausted = true;
  await session.flushed();
  return sent;
}

/** Waits for `ended`, at most `ms`; then closes normally. */
async function endWithin(session: ChannelSession, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((r) => {
    timer = setTimeout(r, ms);
  });
  try {
    await Promise.race([session.ended, timeout]);
  } finally {
    clearTimeout(timer);
  }
  session.close();
  await session.ended;
}

/**
 * Attaches to a container started with `stdin: true, stdinOnce: true` and streams `source` into its stdin,
 * then closes it (v5: close frame; v4: by closing the session).
 * @throws KubernetesApiError (refused, unreachable, dead keepalive, session closed early); CancelledError.
 */
export async function attachStdin(client: KubeClient, options: AttachOptions): Promise<StdinResult> {
  const ws = await client.openWebSocket({
    verb: "create",
    resource: "pods/attach",
    name: options.pod,
    path: podPath(client, options, "attach"),
    query: { container: options.container, stdin: "true", stdout: "false", stderr: "false", tty: "false" },
    protocols: [PROTOCOL_V5, PROTOCOL_V4],
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const session = new ChannelSession(ws, { ...options, description: `attach to pod "${options.pod}"` });
  try {
    const progress = { sent: 0, exhausted: false };
    try {
      await pump(session, options.source, options, progress);
      if (supportsHalfClose(session.protocol)) {
        session.send(closeFrame(STDIN));
        await session.flushed();
        await endWithin(session, options.sessionEndTimeoutMs ?? 30_000);
      } else {
        session.close();
        await session.ended;
      }
    } catch (err) {
      // The whole source went to the socket and then the server ended the session (normally) before our
      // close of stdin: the container closed its stdin or exited by itself — Kaniko stops reading at the end
      // of the tar, a builder killed meanwhile closes it too. That is no transfer failure; the consumer's own
      // result says whether what it read was enough.
      if (!(progress.exhausted && session.closedByServer)) throw err;
    }
    return { bytesSent: progress.sent, protocol: session.protocol };
  } catch (err) {
    session.fail(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

/**
 * Runs a command in a container (no TTY), optionally feeding `source` to its stdin, and collects its
 * output and exit status (channel 3).
 * @throws KubernetesApiError (refused, unreachable, dead keepalive, a v5 session that ended without a status);
 *   CancelledError.
 */
export async function execInPod(client: KubeClient, options: ExecOptions): Promise<ExecResult> {
  const stdout = new TailBuffer(options.maxOutputBytes ?? 1024 * 1024);
  const stderr = new TailBuffer(options.maxOutputBytes ?? 1024 * 1024);
  let status: ExecStatus | null = null;
  const onFrame = (f: Frame): void => {
    if (f.channel === STDOUT) {
      stdout.push(f.data);
      options.onOutput?.("stdout", f.data);
    } else if (f.channel === STDERR) {
      stderr.push(f.data);
      options.onOutput?.("stderr", f.data);
    } else if (f.channel === STATUS) status = parseExecStatus(f.data);
  };
  const ws = await client.openWebSocket({
    verb: "create",
    resource: "pods/exec",
    name: options.pod,
    path: podPath(client, options, "exec"),
    query: { container: options.container, command: options.command, stdin: options.source ? "true" : "false", stdout: "true", stderr: "true", tty: "false" },
    protocols: [PROTOCOL_V5, PROTOCOL_V4],
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const session = new ChannelSession(ws, { ...options, onFrame, description: `exec in pod "${options.pod}"` });
  let bytesSent = 0;
  try {
    if (options.source) {
      bytesSent = await pump(session, options.source, options);
      if (supportsHalfClose(session.protocol)) session.send(closeFrame(STDIN));
      else session.close();
    }
    await session.ended;
  } catch (err) {
    // A command that exits without reading all of its stdin ends the session early: that is its result.
    if (status === null) {
      session.fail(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }
  const st = status as ExecStatus | null;
  // v5 always ends with a status; a session closed without one (seen after a kubelet restart) tells nothing.
  if (st === null && supportsHalfClose(session.protocol)) {
    throw new KubernetesApiError(`exec in pod "${options.pod}" ended without an exit status (the session was lost)`, {
      verb: "create",
      resource: "pods/exec",
      statusCode: null,
    });
  }
  return { bytesSent, protocol: session.protocol, exitCode: st?.exitCode ?? null, status: st, stdout: stdout.value(), stderr: stderr.value() };
}
