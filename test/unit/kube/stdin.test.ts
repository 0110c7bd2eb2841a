import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient } from "../../../src/kube/client.js";
import { attachStdin, execInPod } from "../../../src/kube/stdin.js";
import { CancelledError, KubernetesApiError } from "../../../src/errors.js";

interface FakeWs {
  client: KubeClient;
  urls: URL[];
  close(): Promise<void>;
}

/** A websocket endpoint speaking the channel protocol like the API server's exec/attach. */
async function startFake(protocols: string[], onConn: (ws: WebSocket, url: URL) => void): Promise<FakeWs> {
  const server = http.createServer((_req, res) => {
    res.writeHead(403, { "content-type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", code: 403, reason: "Forbidden", message: 'pods "p" is forbidden: User "eve" cannot create resource "pods/exec"' }));
  });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => protocols.find((p) => offered.has(p)) ?? false });
  const urls: URL[] = [];
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://fake");
    urls.push(url);
    if (url.searchParams.get("deny") === "1") {
      socket.end("HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n\r\n{\"kind\":\"Status\",\"code\":403,\"reason\":\"Forbidden\",\"message\":\"no\"}");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConn(ws, url));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return {
    client: new KubeClient({ kubeConfig: kc, namespace: "ns" }),
    urls,
    close: () => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** Counts stdin; on close-stdin (v5) or socket close (v4) reports the count like `wc -c`. */
function wcServer(ws: WebSocket): void {
  let count = 0;
  ws.on("message", (data: Buffer) => {
    if (data[0] === 0) count += data.length - 1;
    else if (data[0] === 255 && data[1] === 0) {
      ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(`${count}\n`)]));
      ws.send(Buffer.concat([Buffer.from([3]), Buffer.from('{"metadata":{},"status":"Success"}')]));
      ws.close(1000);
    }
  });
}

function source(total: number, chunk = 256 * 1024): Readable {
  let left = total;
  const block = Buffer.alloc(chunk, 7);
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, chunk);
      left -= n;
      this.push(block.subarray(0, n));
    },
  });
}

let fake: FakeWs | null = null;
afterEach(async () => {
  await fake?.close();
  fake = null;
});

describe("execInPod / attachStdin over a fake channel endpoint", () => {
  it("negotiates v5, streams everything, half-closes stdin and reads output and status", async () => {
    fake = await startFake(["v5.channel.k8s.io", "v4.channel.k8s.io"], wcServer);
    const progress: number[] = [];
    const total = 20 * 1024 * 1024 + 5;
    const r = await execInPod(fake.client, {
      pod: "p", container: "c", command: ["wc", "-c"], source: source(total), onProgress: (n) => progress.push(n),
    });
    expect(r).toMatchObject({ bytesSent: total, protocol: "v5.channel.k8s.io", exitCode: 0 });
    expect(r.stdout.toString()).toBe(`${total}\n`);
    expect(progress.at(-1)).toBe(total);
    const q = fake.urls[0]!.searchParams;
    expect(q.getAll("command")).toEqual(["wc", "-c"]);
    expect(q.get("stdin")).toBe("true");
    expect(fake.urls[0]!.pathname).toBe("/api/v1/namespaces/ns/pods/p/exec");
  });

  it("hands each chunk back (releaseChunk) only after every byte of it was copied into frames", async () => {
    // The pod counts the bytes and the 0xff bytes it got: a chunk released before it was copied would arrive
    // overwritten.
    fake = await startFake(["v5.channel.k8s.io"], (ws) => {
      let bytes = 0;
      let overwritten = 0;
      ws.on("message", (data: Buffer) => {
        if (data[0] === 0) {
          bytes += data.length - 1;
          for (let i = 1; i < data.length; i++) if (data[i] === 0xff) overwritten += 1;
        } else if (data[0] === 255 && data[1] === 0) {
          ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(`${bytes} ${overwritten}\n`)]));
          ws.send(Buffer.concat([Buffer.from([3]), Buffer.from('{"metadata":{},"status":"Success"}')]));
          ws.close(1000);
        }
      });
    });
    const chunks = [Buffer.alloc(300_000, 1), Buffer.alloc(5, 2), Buffer.alloc(131_072, 3)];
    const released: Buffer[] = [];
    const r = await execInPod(fake.client, {
      pod: "p", container: "c", command: ["wc", "-c"], source: Readable.from(chunks),
      releaseChunk: (chunk) => {
        released.push(chunk);
        chunk.fill(0xff); // a reused block is overwritten at once: the bytes sent must not change
      },
    });
    expect(released).toEqual(chunks.map((c) => expect.objectContaining({ length: c.length })));
    expect(released.every((c, i) => c === chunks[i])).toBe(true);
    expect(r.stdout.toString()).toBe(`${300_000 + 5 + 131_072} 0\n`);
  });

  it("a v5 session that ends without an exit status is a KubernetesApiError, not exit code null", async () => {
    fake = await startFake(["v5.channel.k8s.io"], (ws) => setTimeout(() => ws.close(1000), 20));
    await expect(execInPod(fake.client, { pod: "p", container: "c", command: ["true"] })).rejects.toThrow(
      /exec in pod "p" ended without an exit status/,
    );
    await expect(execInPod(fake.client, { pod: "p", container: "c", command: ["true"] })).rejects.toBeInstanceOf(KubernetesApiError);
  });

  it("falls back to v4, where closing stdin closes the session", async () => {
    let received = 0;
    fake = await startFake(["v4.channel.k8s.io"], (ws) => ws.on("message", (d: Buffer) => (received += d.length - 1)));
    const r = await attachStdin(fake.client, { pod: "p", container: "c", source: source(1000, 100) });
    expect(r).toEqual({ bytesSent: 1000, protocol: "v4.channel.k8s.io" });
    await new Promise((res) => setTimeout(res, 50));
    expect(received).toBe(1000);
  });

  it("all sent, then the server ends the session before our close frame: not a failure", async () => {
    let received = 0;
    fake = await startFake(["v5.channel.k8s.io"], (ws) =>
      ws.on("message", (d: Buffer) => {
        if (d[0] !== 0) return;
        received += d.length - 1;
        // The container read what it wanted (e.g. up to the tar's end) and closed its stdin at once.
        if (received >= 1000) ws.close(1000);
      }),
    );
    // The source ends only after the server's close arrived: the race seen with Kaniko, made certain.
    async function* slowEnd(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(1000, 7);
      await new Promise((res) => setTimeout(res, 100));
    }
    const r = await attachStdin(fake.client, { pod: "p", container: "c", source: slowEnd() });
    expect(r).toEqual({ bytesSent: 1000, protocol: "v5.channel.k8s.io" });
  });

  it("a session the server ends while the source still has bytes is a KubernetesApiError", async () => {
    fake = await startFake(["v5.channel.k8s.io"], (ws) => ws.once("message", () => ws.close(1000)));
    const err = await attachStdin(fake.client, { pod: "p", container: "c", source: source(64 * 1024 * 1024, 64 * 1024) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect(String(err)).toMatch(/the server closed the session/);
  });

  it("keeps reading bounded by the high-water mark when the server does not read", async () => {
    let paused: WebSocket | null = null;
    fake = await startFake(["v5.channel.k8s.io"], (ws) => {
      paused = ws;
      ws.pause(); // stop reading: TCP buffers fill, then our in-flight limit must stop the source
    });
    const progress: number[] = [];
    const ctrl = new AbortController();
    const p = attachStdin(fake.client, {
      pod: "p", container: "c", source: source(512 * 1024 * 1024), highWaterMark: 1024 * 1024,
      onProgress: (n) => progress.push(n), signal: ctrl.signal,
    });
    await new Promise((res) => setTimeout(res, 500));
    const sent = progress.at(-1) ?? 0;
    // Socket buffers (kernel, both ends) plus 1 MiB in flight — far from the 512 MiB source.
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    ctrl.abort();
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(paused).not.toBeNull();
  });

  it("maps a refused handshake to KubernetesApiError", async () => {
    fake = await startFake(["v5.channel.k8s.io"], wcServer);
    const c = fake.client;
    const refused = await c
      .openWebSocket({ verb: "create", resource: "pods/exec", path: "/api/v1/namespaces/ns/pods/p/exec", query: { deny: "1" }, protocols: ["v5.channel.k8s.io"] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KubernetesApiError);
    expect(refused).toMatchObject({ statusCode: 403, reason: "Forbidden", resource: "pods/exec" });
  });
});
