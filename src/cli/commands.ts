/**
 * The `kce` commands: each takes the parsed command line and an engine, prints through `Output`, and
 * returns the process exit code.
 */
import { publishFlagsToPorts, type BuildProgress, type KubernetesEngine } from "../index.js";
import { parseDuration, parseKeyValues, UsageError, type ParsedCommand } from "./args.js";
import type { Output } from "./output.js";

export interface CommandContext {
  engine: KubernetesEngine;
  output: Output;
  env: Record<string, string | undefined>;
  stdin: NodeJS.ReadableStream;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);

export async function buildCommand(cmd: ParsedCommand, ctx: CommandContext): Promise<number> {
  const source = cmd.positionals[0] ?? ".";
  const started = Date.now();
  const tag = String(cmd.flags.tag);
  const memory = typeof cmd.flags.memory === "string" ? parseMemory(cmd.flags.memory) : undefined;
  const stream = ctx.engine.build({
    tag,
    ...(source === "-" ? { context: ctx.stdin } : { path: source }),
    ...(typeof cmd.flags.file === "string" ? { dockerfile: cmd.flags.file } : {}),
    buildArgs: parseKeyValues("build-arg", strings(cmd.flags["build-arg"]), ctx.env),
    labels: parseKeyValues("label", strings(cmd.flags.label)),
    cacheFrom: strings(cmd.flags["cache-from"]),
    ...(typeof cmd.flags.platform === "string" ? { platform: cmd.flags.platform } : {}),
    push: true,
    load: cmd.flags["no-load"] !== true,
    ...(memory !== undefined ? { containerLimits: { memory } } : {}),
    signal: ctx.signal,
    onProgress: (p: BuildProgress) => (p.kind === "context" ? ctx.output.contextProgress(p) : ctx.output.phase(p.message)),
  });
  for await (const line of stream) ctx.output.line(line);
  const result = await stream.result;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  ctx.output.result(`built ${result.image}${result.digest ? `@${result.digest}` : ""} in ${seconds}s`, {
    image: result.image,
    digest: result.digest,
    pushed: result.pushed,
    seconds: Number(seconds),
  });
  return 0;
}

export async function runCommand(cmd: ParsedCommand, ctx: CommandContext): Promise<number> {
  const image = cmd.positionals[0] ?? "";
  const container = await ctx.engine.run(image, {
    ...(cmd.rest.length > 0 ? { command: cmd.rest } : {}),
    environment: Object.entries(parseKeyValues("env", strings(cmd.flags.env), ctx.env)).map(([k, v]) => `${k}=${v}`),
    ports: publishFlagsToPorts(strings(cmd.flags.publish)),
    ...(typeof cmd.flags.user === "string" ? { user: cmd.flags.user } : {}),
    // Attached, we remove the pod ourselves once its logs and exit code are read (the engine's remove-on-exit
    // would race them); detached, nobody is left to do it, so the engine does.
    remove: cmd.flags.rm === true && cmd.flags.detach === true,
    signal: ctx.signal,
  });
  for (const [port, local] of Object.entries(container.ports ?? {})) {
    ctx.output.phase(`${port} is forwarded to http://${local.host}:${local.port}`);
  }
  if (cmd.flags.detach === true) {
    ctx.output.result(container.id, { container: container.id, status: container.status, ports: container.ports ?? {} });
    return 0;
  }
  const stop = (): void => void container.stop({ timeout: 10 }).catch(() => undefined);
  ctx.signal.addEventListener("abort", stop, { once: true });
  try {
    for await (const line of container.streamLogs()) ctx.output.line(line);
    const { exitCode } = await container.wait();
    ctx.output.result(container.reason ? `kce: container ${container.id} exited ${exitCode}: ${container.reason}` : "", {
      container: container.id,
      exitCode,
      reason: container.reason,
    });
    return exitCode;
  } finally {
    ctx.signal.removeEventListener("abort", stop);
    if (cmd.flags.rm === true) await container.remove();
  }
}

export async function inspectCommand(cmd: ParsedCommand, ctx: CommandContext): Promise<number> {
  const ref = cmd.positionals[0] ?? "";
  const image = await ctx.engine.inspectImage(ref);
  if (!image) {
    ctx.output.error(new Error(`image ${ref} not found in the registry`));
    return 1;
  }
  process.stdout.write(`${JSON.stringify({ tags: image.tags, config: image.config }, null, ctx.output.json ? 0 : 2)}\n`);
  return 0;
}

export async function imagesCommand(_cmd: ParsedCommand, ctx: CommandContext): Promise<number> {
  const images = await ctx.engine.images();
  if (ctx.output.json) {
    for (const image of images) process.stdout.write(`${JSON.stringify({ tags: image.tags })}\n`);
  } else {
    for (const image of images) process.stdout.write(`${image.tags.join(" ")}\n`);
  }
  return 0;
}

export async function pushCommand(cmd: ParsedCommand, ctx: CommandContext): Promise<number> {
  for await (const line of ctx.engine.push(cmd.positionals[0] ?? "")) ctx.output.line(line);
  return 0;
}

export async function gcCommand(cmd: ParsedCommand, ctx: CommandContext): Promise<number> {
  const olderThan = typeof cmd.flags["older-than"] === "string" ? parseDuration(cmd.flags["older-than"]) : undefined;
  const actions = await ctx.engine.gc({
    ...(olderThan !== undefined ? { olderThanSeconds: olderThan } : {}),
    all: cmd.flags.all === true,
    dryRun: cmd.flags["dry-run"] === true,
  });
  const verb = cmd.flags["dry-run"] === true ? "would delete" : "deleted";
  for (const a of actions) ctx.output.line(`${verb} ${a.kind.toLowerCase()}/${a.name} (${a.why})\n`);
  ctx.output.result(`kce gc: ${verb} ${actions.length} object(s) in namespace ${ctx.engine.namespace}`, {
    deleted: cmd.flags["dry-run"] === true ? [] : actions,
    planned: actions,
  });
  return 0;
}

/** "512m", "2g", "1024k" or bytes → bytes. */
export function parseMemory(text: string): number {
  const match = /^(\d+)([kmg]?)b?$/i.exec(text.trim());
  if (!match) throw new UsageError(`--memory ${JSON.stringify(text)}: use bytes or a k/m/g suffix (e.g. 2g)`, "build");
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? "").toLowerCase() as "" | "k" | "m" | "g"];
  return Number(match[1]) * unit;
}

