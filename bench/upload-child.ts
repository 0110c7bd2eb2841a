/**
 * P2's engine side, in its own process so its memory is the engine's alone: packs a context directory with the
 * engine's context packer (deterministic tar, compression from $KCE_CONTEXT_COMPRESSION, default auto) and streams it into a command's stdin
 * in a waiting pod with the engine's `execInPod`. Prints one JSON line: sizes, times and memory.
 *
 *   node upload-child.js <namespace> <pod> <dir> <command as JSON array>
 */
import { KubeConfig } from "@kubernetes/client-node";
import { createBuildContext } from "../src/imaging/context.js";
import { parseContextCompression } from "../src/imaging/context-compression.js";
import { KubeClient } from "../src/kube/client.js";
import { execInPod } from "../src/kube/stdin.js";
import { memoryOf } from "./lib.js";

async function main(): Promise<void> {
  const [namespace, pod, dir, commandJson] = process.argv.slice(2);
  if (!namespace || !pod || !dir || !commandJson) throw new Error("usage: upload-child <namespace> <pod> <dir> <command JSON>");
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const client = new KubeClient({ kubeConfig, namespace });
  const baseline = memoryOf("self");
  const started = performance.now();
  const context = await createBuildContext({ path: dir });
  const listed = performance.now();
  const afterListing = memoryOf("self");
  const compression = parseContextCompression(process.env.KCE_CONTEXT_COMPRESSION ?? "auto", "KCE_CONTEXT_COMPRESSION");
  const sent = context.open({ compression });
  const result = await execInPod(client, {
    pod,
    container: pod,
    command: JSON.parse(commandJson) as string[],
    source: sent.stream,
    releaseChunk: sent.release,
  });
  const summary = await sent.done;
  const ended = performance.now();
  await context.dispose();
  const peak = memoryOf("self");
  process.stdout.write(
    `${JSON.stringify({
      protocol: result.protocol,
      exitCode: result.exitCode,
      stdout: result.stdout.toString("utf8").trim(),
      stderr: result.stderr.toString("utf8").trim().slice(-2000),
      bytesSent: result.bytesSent,
      tarBytes: summary.tarBytes,
      gzipBytes: summary.gzipBytes,
      compressionLevel: summary.compressionLevel,
      files: summary.files,
      listMs: listed - started,
      transferMs: ended - listed,
      baselineRssMiB: baseline?.rssMiB ?? null,
      listedHwmMiB: afterListing?.hwmMiB ?? null,
      hwmMiB: peak?.hwmMiB ?? null,
    })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
