/**
 * `kce rpc`: serves the engine over line-delimited JSON on stdin/stdout (protocol: src/rpc/protocol.ts) until
 * stdin ends or the process is told to stop. Used by the repo2docker adapter (python/repo2docker-kce).
 */
import { once } from "node:events";
import { createInterface } from "node:readline";
import { RpcServer } from "../rpc/server.js";
import type { RpcMessage } from "../rpc/protocol.js";
import type { ParsedCommand } from "./args.js";
import type { CommandContext } from "./commands.js";

export async function rpcCommand(_cmd: ParsedCommand, ctx: CommandContext, version: string): Promise<number> {
  const stdout = process.stdout;
  // stdout carries protocol messages only: anything a library would print there goes to stderr.
  console.log = console.info = console.debug = console.error;
  const send = async (message: RpcMessage): Promise<void> => {
    if (!stdout.write(`${JSON.stringify(message)}\n`)) await once(stdout, "drain");
  };
  const server = new RpcServer({
    engine: ctx.engine,
    send,
    log: (message) => process.stderr.write(`kce: ${message}\n`),
    version,
  });
  const lines = createInterface({ input: ctx.stdin, crlfDelay: Infinity });
  const close = (): void => lines.close();
  ctx.signal.addEventListener("abort", close, { once: true });
  try {
    await server.serve(lines);
  } finally {
    ctx.signal.removeEventListener("abort", close);
  }
  return 0;
}
