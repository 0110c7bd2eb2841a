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
    // "Bounded" means the RSS stops growing once the pipeline is primed, whatever the byte count: a copy
    // or a leak of the stream grows with every MiB sent. So compare the peak after the first 100 MiB with
    // the peak at the end (200 MiB later), rather than the total growth against a figure: how much slack
    // V8 and the allocator keep for garbage varies with the machine's load (44–80 MiB seen on 2 cores).
    let peak = rss0;
    let peakAt100MiB = 0;
    const sample = (): void => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    const sampler = setInterval(sample, 50);
    let progressCalls = 0;
    const t0 = Date.now();
    const result = await execInPod(client, {
      pod: "sink",
      container: "main",
      command: ["wc", "-c"],
      source: lazySource(total),
      onProgress: (sent) => {
        progressCalls++;
        if (peakAt100MiB === 0 && sent >= 100 * MiB) {
          sample();
          peakAt100MiB = peak;
        }
      },
    });
    const seconds = (Date.now() - t0) / 1000;
    clearInterval(sampler);
    sample();
    const growth = (peak - rss0) / MiB;
    const lateGrowth = (peak - peakAt100MiB) / MiB;
    console.log(
      `exec stdin: ${total / MiB} MiB in ${seconds.toFixed(2)} s = ${(total / MiB / seconds).toFixed(1)} MiB/s, ` +
        `protocol ${result.protocol}, RSS ${(rss0 / MiB).toFixed(0)} → ${(peakAt100MiB / MiB).toFixed(0)} at 100 MiB → ` +
        `peak ${(peak / MiB).toFixed(0)} MiB (growth ${growth.toFixed(1)}, of it ${lateGrowth.toFixed(1)} in the last 200 MiB)`,
    );
    expect(result.protocol).toBe("v5.channel.k8s.io");
    expect(result.exitCode).toBe(0);
    expect(result.bytesSent).toBe(total);
    expect(Number(result.stdout.toString().trim())).toBe(total);
    expect(progressCalls).toBeGreaterThan(100);
    expect(peakAt100MiB).toBeGreaterThan(0);
    // A leak of the last 200 MiB would add ≈ 200 MiB here; slack for garbage a few tens at most.
    expect(lateGrowth).toBeLessThan(64);
    // Nowhere near the 300 MiB sent: the stream is never held.
    expect(growth).toBeLessThan(160);
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
