// Bounded-memory stdin streaming on the real cluster: ~300 MiB into `wc -c` via exec, and attach to a
// stdin/stdinOnce container.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { readLogs } from "../../../src/kube/logs.js";
import { attachStdin, execInPod } from "../../../src/kube/stdin.js";
import { createPod, deleteNamespace, namespaceClient, testPod, waitDone, waitStarted } from "./helpers.js";

const MiB = 1024 * 1024;

/** `total` bytes of a repeated random block, produced lazily (the source itself holds 1 MiB). */
function lazySource(total: number): Readable {
  const block = randomBytes(MiB);
  let left = total;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, 64 * 1024);
      const offset = (total - left) % MiB;
      const piece = offset + n <= MiB ? block.subarray(offset, offset + n) : block.subarray(0, n);
      left -= n;
      this.push(piece);
    },
  });
}

describe("stdin streaming (e2e)", () => {
  let client: KubeClient;
  beforeAll(async () => {
    client = await namespaceClient("kce-e2e-stdin");
  });
  afterAll(async () => {
    await deleteNamespace(client);
  });

  it("streams 300 MiB into `wc -c` via exec with bounded memory", async () => {
    await createPod(client, testPod("sink", ["sleep", "3600"]));
    await waitStarted(client, "sink");
    // Warm up (loads the websocket path), then measure.
    const warm = await execInPod(client, { pod: "sink", container: "main", command: ["true"] });
    expect(warm.exitCode).toBe(0);
    global.gc?.();
    const total = 300 * MiB;
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    let progressCalls = 0;
    const t0 = Date.now();
    const result = await execInPod(client, {
      pod: "sink",
      container: "main",
      command: ["wc", "-c"],
      source: lazySource(total),
      onProgress: () => progressCalls++,
    });
    const seconds = (Date.now() - t0) / 1000;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const growth = (peak - rss0) / MiB;
    console.log(
      `exec stdin: ${total / MiB} MiB in ${seconds.toFixed(2)} s = ${(total / MiB / seconds).toFixed(1)} MiB/s, ` +
        `protocol ${result.protocol}, RSS ${(rss0 / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB (growth ${growth.toFixed(1)} MiB)`,
    );
    expect(result.protocol).toBe("v5.channel.k8s.io");
    expect(result.exitCode).toBe(0);
    expect(result.bytesSent).toBe(total);
    expect(Number(result.stdout.toString().trim())).toBe(total);
    expect(progressCalls).toBeGreaterThan(100);
    expect(growth).toBeLessThan(80);
  });

  it("reports a command's non-zero exit code and stderr", async () => {
    const r = await execInPod(client, { pod: "sink", container: "main", command: ["sh", "-c", "echo oops >&2; exit 3"] });
    expect(r.exitCode).toBe(3);
    expect(r.stderr.toString()).toBe("oops\n");
  });

  it("attaches to a stdin/stdinOnce container running `wc -c`; the count shows in its log", async () => {
    await createPod(client, testPod("counter", ["wc", "-c"], {}, { stdin: true, stdinOnce: true }));
    await waitStarted(client, "counter");
    const total = 10 * MiB + 123;
    const r = await attachStdin(client, { pod: "counter", container: "main", source: lazySource(total) });
    expect(r).toEqual({ bytesSent: total, protocol: "v5.channel.k8s.io" });
    const pod = await waitDone(client, "counter");
    expect(pod.status?.phase).toBe("Succeeded");
    const lines = await readLogs(client, { pod: "counter", container: "main" });
    expect(lines.map((l) => l.text.trim())).toEqual([String(total)]);
  });
});
