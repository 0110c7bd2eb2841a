#!/usr/bin/env -S node --max-semi-space-size=2
// ^ V8's young generation grows to tens of MiB under an upload's allocation rate and stays there: capped at
//   2 MiB, the peak RSS of a 512 MiB / 50k-file upload fell from ≈ 250 to ≈ 140 MiB, and it ran no slower
//   (bench P2). The Dockerfile's `kce` wrapper passes the same flag.
/**
 * `kce`: the command line. Parse (usage errors exit 2) → configure the engine → run the command
 * (engine errors exit 1; `run` exits with the container's code).
 */
import { readFileSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ContainerEngineError } from "../index.js";
import { COMMANDS, GLOBAL_USAGE, parseCommandLine, UsageError, type ParsedCommand } from "./args.js";
import {
  buildCommand,
  gcCommand,
  imagesCommand,
  inspectCommand,
  pushCommand,
  runCommand,
  type CommandContext,
} from "./commands.js";
import { exitWhenFlushed } from "./exit.js";
import { createOutput } from "./output.js";
import { rpcCommand } from "./rpc.js";
import { serveCommand } from "./serve.js";
import { createEngine } from "./settings.js";

const HANDLERS = {
  build: buildCommand,
  run: runCommand,
  inspect: inspectCommand,
  images: imagesCommand,
  push: pushCommand,
  gc: gcCommand,
  rpc: (cmd: ParsedCommand, ctx: CommandContext) => rpcCommand(cmd, ctx, version()),
  serve: (cmd: ParsedCommand, ctx: CommandContext) => serveCommand(cmd, ctx, version()),
} as const;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Runs `kce` with `argv` (without node and script) and resolves with the exit code. */
export async function main(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let cmd: ParsedCommand;
  try {
    cmd = parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`kce: ${err.message}\n\n${err.command ? COMMANDS[err.command].usage : GLOBAL_USAGE}\n`);
    return 2;
  }
  if (cmd.help) {
    process.stdout.write(`${cmd.command === "version" && argv.every((a) => a.startsWith("-")) ? GLOBAL_USAGE : COMMANDS[cmd.command].usage}\n`);
    return 0;
  }
  if (cmd.command === "version") {
    process.stdout.write(`kce ${version()}\n`);
    return 0;
  }
  const output = createOutput({ json: cmd.global.json, quiet: cmd.global.quiet }, { stdout: process.stdout, stderr: process.stderr });
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const engine = createEngine(cmd, env);
    const ctx: CommandContext = { engine, output, env, stdin: process.stdin, signal: controller.signal };
    return await HANDLERS[cmd.command](cmd, ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`kce: ${err.message}\n\n${COMMANDS[cmd.command].usage}\n`);
      return 2;
    }
    output.error(err);
    if (!(err instanceof ContainerEngineError) && env.KCE_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  } finally {
    output.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** True when this file is the program node started (directly, or through npm's `kce` bin symlink). */
function startedAsProgram(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// Started as a program (not imported by tests): run and exit with the code once the output is written.
if (startedAsProgram()) {
  const exit = (code: number): void => exitWhenFlushed(code, [process.stdout, process.stderr], (c) => process.exit(c));
  main(process.argv.slice(2)).then(exit, (err: unknown) => {
    process.stderr.write(`kce: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    exit(1);
  });
}
