/**
 * Command-line parsing for `kce`: pure, so every accepted and rejected shape is unit-tested.
 * Follows kubectl's conventions for the cluster flags (--namespace/-n, --context, --kubeconfig).
 */
import { parseContextCompression, type BuilderKind, type BuildkitMode, type ContextCompression } from "../index.js";
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A usage error: the CLI prints the message and the command's help, and exits 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command: CommandName | null,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export type CommandName = "build" | "run" | "inspect" | "images" | "push" | "gc" | "rpc" | "serve" | "version";

export interface GlobalFlags {
  namespace?: string;
  context?: string;
  kubeconfig?: string;
  registry?: string;
  builder?: BuilderKind;
  config?: string;
  json: boolean;
  quiet: boolean;
}

/** Engine options that `build` and `push` take as their own flags (empty for the other commands). */
export interface EngineFlags {
  /** `--buildkit-mode`. */
  buildkitMode?: BuildkitMode;
  /** `--insecure-registry` (repeatable): replaces $KCE_INSECURE_REGISTRIES and the config file's list. */
  insecureRegistries?: string[];
  /** `--compress` (build only). */
  contextCompression?: ContextCompression;
}

export interface ParsedCommand {
  command: CommandName;
  global: GlobalFlags;
  /** `--buildkit-mode`, `--insecure-registry` of build and push, checked. */
  engine: EngineFlags;
  /** The command's own flags, already checked. */
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** Everything after `--` (the container command for `run`). */
  rest: string[];
  help: boolean;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

const GLOBAL_OPTIONS: Options = {
  namespace: { type: "string", short: "n" },
  context: { type: "string" },
  kubeconfig: { type: "string" },
  registry: { type: "string" },
  builder: { type: "string" },
  config: { type: "string" },
  json: { type: "boolean", default: false },
  quiet: { type: "boolean", short: "q", default: false },
  help: { type: "boolean", short: "h", default: false },
};

/** The engine flags of build and push (see {@link EngineFlags}). */
const ENGINE_OPTIONS: Options = {
  "buildkit-mode": { type: "string" },
  "insecure-registry": { type: "string", multiple: true },
};
const ENGINE_USAGE =
  "  --buildkit-mode auto|rootless|privileged   how BuildKit runs (default: $KCE_BUILDKIT_MODE, else auto: rootless\n" +
  "                         when the builder image is a rootless one, else an error; privileged only when asked)\n" +
  "  --insecure-registry HOST[:PORT]   a registry the builder reaches over plain HTTP / unverified TLS (repeatable;\n" +
  "                         default: $KCE_INSECURE_REGISTRIES, comma-separated)";
/** Flags that become {@link EngineFlags} rather than command flags. */
const ENGINE_FLAG_NAMES = new Set([...Object.keys(ENGINE_OPTIONS), "compress"]);
const BUILDKIT_MODES: readonly BuildkitMode[] = ["auto", "rootless", "privileged"];

/** Each command's own options and how many positionals it takes. */
export const COMMANDS: Record<CommandName, { options: Options; positionals: [number, number]; usage: string }> = {
  build: {
    options: {
      tag: { type: "string", short: "t" },
      file: { type: "string", short: "f" },
      "build-arg": { type: "string", multiple: true },
      label: { type: "string", multiple: true },
      "cache-from": { type: "string", multiple: true },
      platform: { type: "string" },
      push: { type: "boolean", default: false },
      "no-load": { type: "boolean", default: false },
      memory: { type: "string" },
      compress: { type: "string" },
      ...ENGINE_OPTIONS,
    },
    positionals: [1, 1],
    usage:
      "kce build <dir|-> -t <tag> [-f Dockerfile] [--build-arg K=V]… [--label k=v]… [--cache-from ref]…\n" +
      "          [--platform os/arch] [--builder kaniko|buildkit|buildkit-pool] [--buildkit-mode MODE] [--insecure-registry HOST]…\n" +
      "          [--compress auto|none|0-9] [--push] [--json]\n" +
      "  Builds <dir> (or a tar on stdin with '-') in a builder pod; the image lands in the registry.\n" +
      ENGINE_USAGE +
      "\n  --compress auto|none|0-9   gzip level of the context upload (default: $KCE_CONTEXT_COMPRESSION, else auto:\n" +
      "                         stored, compressed only while the link is slow and compressing pays)",
  },
  run: {
    options: {
      publish: { type: "string", short: "p", multiple: true },
      env: { type: "string", short: "e", multiple: true },
      rm: { type: "boolean", default: false },
      user: { type: "string", short: "u" },
      detach: { type: "boolean", short: "d", default: false },
    },
    positionals: [1, 1],
    usage:
      "kce run <image> [-p [addr:]local:container]… [-e K=V]… [-u uid] [--rm] [-d] [-- command…]\n" +
      "  Runs <image> as a pod, streams its logs, exits with its exit code (-d: print the pod name and return).",
  },
  inspect: { options: {}, positionals: [1, 1], usage: "kce inspect <image>\n  Prints the image config as JSON." },
  images: { options: {}, positionals: [0, 0], usage: "kce images\n  Lists the images in the engine's registry." },
  push: {
    options: { ...ENGINE_OPTIONS },
    positionals: [1, 1],
    usage:
      "kce push <image> [--builder kaniko|buildkit] [--buildkit-mode MODE] [--insecure-registry HOST]…\n" +
      "  Pushes <image> through an in-cluster builder.\n" +
      ENGINE_USAGE,
  },
  gc: {
    options: {
      "older-than": { type: "string" },
      "dry-run": { type: "boolean", default: false },
      all: { type: "boolean", default: false },
    },
    positionals: [0, 0],
    usage:
      "kce gc [--older-than 1h] [--all] [--dry-run]\n" +
      "  Deletes what the engine created and crashed clients left behind (default: finished objects).",
  },
  rpc: {
    options: { listen: { type: "string" } },
    positionals: [0, 0],
    usage:
      "kce rpc [--listen SOCKET]\n  Serves the engine as line-delimited JSON on stdin/stdout (for the repo2docker adapter; see src/rpc/protocol.ts).\n" +
      "  --listen SOCKET   start up now and serve one client on this Unix socket instead (a warm runner's engine)",
  },
  serve: {
    options: {
      "service-config": { type: "string" },
      port: { type: "string" },
      grace: { type: "string" },
    },
    positionals: [0, 0],
    usage:
      "kce serve [--service-config FILE] [--port N] [--grace 5m]\n" +
      "  Runs the build service: BinderHub's build API (GET /build/<provider>/<spec>), /health, /versions, /metrics\n" +
      "  and a page at /. Builds run repo2docker --engine kubernetes in runner Jobs (README \"Build service\").\n" +
      "  --service-config FILE   YAML settings (default: $KCE_SERVICE_CONFIG)\n" +
      "  --port N                listen port (default 8585)\n" +
      "  --grace DURATION        on SIGTERM, how long open streams may go on (default 5m)",
  },
  version: { options: {}, positionals: [0, 0], usage: "kce version" },
};

export const GLOBAL_USAGE =
  "Usage: kce <command> [flags]\n\n" +
  "Commands: build, run, inspect, images, push, gc, rpc, serve, version\n\n" +
  "Flags for every command:\n" +
  "  -n, --namespace NS     namespace (default: the context's, else default)\n" +
  "      --context NAME     kubeconfig context\n" +
  "      --kubeconfig FILE  kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)\n" +
  "      --registry HOST    registry for images without a host (default: $KCE_REGISTRY or the cluster's\n" +
  "                         local-registry-hosting ConfigMap)\n" +
  "      --builder NAME     kaniko, buildkit or buildkit-pool (warm BuildKit daemons)\n" +
  "      --config FILE      YAML config file (default: $KCE_CONFIG, ~/.config/kce/config.yaml)\n" +
  "      --json             machine-readable events, one JSON object per line\n" +
  "  -q, --quiet            no progress lines\n" +
  "  -h, --help             help for a command\n\n" +
  "Exit codes: 0 ok, 1 engine error, 2 usage error; `run` exits with the container's code.";

function isCommand(word: string | undefined): word is CommandName {
  return word !== undefined && Object.hasOwn(COMMANDS, word);
}

/** Parses `argv` (without node and the script). Throws UsageError for anything malformed. */
export function parseCommandLine(argv: string[]): ParsedCommand {
  const dashDash = argv.indexOf("--");
  const head = dashDash >= 0 ? argv.slice(0, dashDash) : argv;
  const rest = dashDash >= 0 ? argv.slice(dashDash + 1) : [];
  const commandIndex = findCommandIndex(head);
  const word = commandIndex >= 0 ? head[commandIndex] : undefined;
  if (!isCommand(word)) {
    if (word === undefined && (head.includes("--help") || head.includes("-h") || argv.length === 0)) {
      return { command: "version", global: { json: false, quiet: false }, engine: {}, flags: {}, positionals: [], rest, help: true };
    }
    throw new UsageError(word ? `unknown command ${JSON.stringify(word)}` : "no command given", null);
  }
  const spec = COMMANDS[word];
  let parsed;
  try {
    parsed = parseArgs({
      args: [...head.slice(0, commandIndex), ...head.slice(commandIndex + 1)],
      options: { ...GLOBAL_OPTIONS, ...spec.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message, word);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const help = values.help === true;
  if (!help) checkPositionals(word, parsed.positionals, spec.positionals);
  if (rest.length > 0 && word !== "run") throw new UsageError(`"--" is only allowed for run`, word);
  const builder = values.builder;
  if (builder !== undefined && builder !== "kaniko" && builder !== "buildkit" && builder !== "buildkit-pool") {
    throw new UsageError(`--builder must be kaniko, buildkit or buildkit-pool, not ${JSON.stringify(builder)}`, word);
  }
  if (word === "build" && !help && typeof values.tag !== "string") throw new UsageError("build needs -t <tag>", word);
  const engine = engineFlags(values, word);
  const flags: ParsedCommand["flags"] = {};
  for (const name of Object.keys(spec.options)) if (!ENGINE_FLAG_NAMES.has(name)) flags[name] = values[name];
  return {
    command: word,
    global: {
      namespace: values.namespace as string | undefined,
      context: values.context as string | undefined,
      kubeconfig: values.kubeconfig as string | undefined,
      registry: values.registry as string | undefined,
      builder: builder as GlobalFlags["builder"],
      config: values.config as string | undefined,
      json: values.json === true,
      quiet: values.quiet === true,
    },
    engine,
    flags,
    positionals: parsed.positionals,
    rest,
    help,
  };
}

/** Checks `--buildkit-mode` and `--insecure-registry` (only build and push accept them at all). */
function engineFlags(values: Record<string, string | boolean | string[] | undefined>, command: CommandName): EngineFlags {
  const out: EngineFlags = {};
  const mode = values["buildkit-mode"];
  if (typeof mode === "string") {
    if (!(BUILDKIT_MODES as readonly string[]).includes(mode)) {
      throw new UsageError(`--buildkit-mode must be auto, rootless or privileged, not ${JSON.stringify(mode)}`, command);
    }
    out.buildkitMode = mode as BuildkitMode;
  }
  const compress = values.compress;
  if (typeof compress === "string") {
    try {
      out.contextCompression = parseContextCompression(compress, "--compress");
    } catch (err) {
      throw new UsageError((err as Error).message, command);
    }
  }
  const hosts = values["insecure-registry"];
  if (Array.isArray(hosts)) {
    for (const host of hosts) {
      if (host === "" || /\s|\//.test(host)) {
        throw new UsageError(`--insecure-registry ${JSON.stringify(host)}: expected HOST[:PORT], without a scheme or path`, command);
      }
    }
    out.insecureRegistries = [...new Set(hosts)];
  }
  return out;
}

/** Global flags that take a value as the next word (`-n ns`, `--context c`), so that value is no command. */
const GLOBAL_VALUE_FLAGS = new Set(
  Object.entries(GLOBAL_OPTIONS)
    .filter(([, option]) => option.type === "string")
    .flatMap(([name, option]) => [`--${name}`, ...(option.short ? [`-${option.short}`] : [])]),
);

/** The index of the command word: the first word that is neither a flag nor a global flag's value. */
function findCommandIndex(head: string[]): number {
  for (let i = 0; i < head.length; i++) {
    const word = head[i] ?? "";
    if (!word.startsWith("-")) return i;
    if (GLOBAL_VALUE_FLAGS.has(word)) i++;
  }
  return -1;
}

function checkPositionals(command: CommandName, given: string[], [min, max]: [number, number]): void {
  if (given.length < min) throw new UsageError(`${command} needs ${min} argument${min === 1 ? "" : "s"}`, command);
  if (given.length > max) {
    throw new UsageError(`${command}: unexpected argument ${JSON.stringify(given[max])}`, command);
  }
}

/**
 * Splits `K=V` (for --build-arg, --label, -e); a missing "=" is a usage error naming the flag. With `env`,
 * a bare `K` takes its value from it, as docker does for `-e K` and `--build-arg K`.
 */
export function parseKeyValues(
  flag: string,
  items: string[] | undefined,
  env?: Record<string, string | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf("=");
    if (eq < 0 && env && item.length > 0) {
      out[item] = env[item] ?? "";
    } else if (eq <= 0) {
      throw new UsageError(`--${flag} ${JSON.stringify(item)}: expected KEY=VALUE`, null);
    } else {
      out[item.slice(0, eq)] = item.slice(eq + 1);
    }
  }
  return out;
}

/** Parses a duration such as "90s", "15m", "2h", "1d" into seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text);
  if (!match) throw new UsageError(`bad duration ${JSON.stringify(text)}: use e.g. 90s, 15m, 2h, 1d`, null);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}
