/**
 * `kce serve`: the build service (src/service/). Reads its settings (YAML), serves until SIGTERM/SIGINT, then
 * stops taking builds and gives open streams `--grace` to finish; the builds themselves run on as Jobs.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolveServiceConfig } from "../service/config.js";
import { serve } from "../service/start.js";
import { parseDuration, UsageError, type ParsedCommand } from "./args.js";
import type { CommandContext } from "./commands.js";
import { loadYamlDocument } from "./settings.js";

function readServiceConfig(path: string | undefined): unknown {
  if (path === undefined) return {};
  if (!existsSync(path)) throw new UsageError(`service config ${path} does not exist`, "serve");
  try {
    return loadYamlDocument(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`service config ${path} is not valid YAML: ${(err as Error).message}`, "serve");
  }
}

export async function serveCommand(cmd: ParsedCommand, ctx: CommandContext, version: string): Promise<number> {
  const file = typeof cmd.flags["service-config"] === "string" ? cmd.flags["service-config"] : ctx.env.KCE_SERVICE_CONFIG;
  const env = { ...ctx.env, ...(typeof cmd.flags.port === "string" ? { KCE_SERVICE_PORT: cmd.flags.port } : {}) };
  const config = resolveServiceConfig(readServiceConfig(file), env);
  const graceMs = (typeof cmd.flags.grace === "string" ? parseDuration(cmd.flags.grace) : 300) * 1000;
  await serve({
    engine: ctx.engine,
    config,
    env,
    version,
    graceMs,
    signal: ctx.signal,
    log: (message) => process.stderr.write(`kce serve: ${message}\n`),
  });
  return 0;
}
