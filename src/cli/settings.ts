/**
 * Where `kce` gets its engine options: flags, then environment, then a YAML config file
 * (`--config`, `$KCE_CONFIG`, `~/.config/kce/config.yaml`). Pure apart from reading the file.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { KubeConfig } from "@kubernetes/client-node";
import { KubernetesEngine, type BuilderKind, type BuildkitMode, type ContextCompression, type KubernetesEngineOptions, type PoolOptions, type RegistryOptions } from "../index.js";
import type { EngineFlags, GlobalFlags, ParsedCommand } from "./args.js";
import { UsageError } from "./args.js";

/** The config file's shape (all optional). */
export interface ConfigFile {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  builder?: BuilderKind;
  pool?: PoolOptions;
  buildkitMode?: BuildkitMode;
  insecureRegistries?: string[];
  contextCompression?: ContextCompression | "none";
  registry?: RegistryOptions;
  builderImages?: { kaniko?: string; buildkit?: string };
  timeouts?: KubernetesEngineOptions["timeouts"];
  labels?: Record<string, string>;
  serviceAccountName?: string;
  nodeSelector?: Record<string, string>;
}

/**
 * One YAML document, or undefined for a file that is empty or only comments (js-yaml 5's `load` throws
 * on those, 4's returns undefined; an empty config file means "no settings"). More than one document is an error.
 */
export function loadYamlDocument(text: string): unknown {
  const documents = yaml.loadAll(text);
  if (documents.length > 1) throw new Error(`expected one YAML document, found ${documents.length}`);
  return documents[0];
}

/** Reads the config file; a missing default file is fine, a missing named one is a usage error. */
export function readConfigFile(flags: GlobalFlags, env: Record<string, string | undefined>): ConfigFile {
  const named = flags.config ?? env.KCE_CONFIG;
  const path = named ?? join(env.HOME ?? homedir(), ".config", "kce", "config.yaml");
  if (!existsSync(path)) {
    if (named) throw new UsageError(`config file ${path} does not exist`, null);
    return {};
  }
  let parsed: unknown;
  try {
    parsed = loadYamlDocument(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`config file ${path} is not valid YAML: ${(err as Error).message}`, null);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) throw new UsageError(`config file ${path} must be a mapping`, null);
  return parsed as ConfigFile;
}

/**
 * Engine options from flags > environment > config file (the engine itself reads KCE_* env defaults). `engine`:
 * the command's `--buildkit-mode` / `--insecure-registry` (build, push).
 */
export function engineOptions(
  flags: GlobalFlags,
  file: ConfigFile,
  env: Record<string, string | undefined>,
  engine: EngineFlags = {},
): KubernetesEngineOptions {
  const kubeConfig = new KubeConfig();
  const kubeconfigPath = flags.kubeconfig ?? (env.KUBECONFIG ? undefined : file.kubeconfig);
  try {
    if (kubeconfigPath) kubeConfig.loadFromFile(kubeconfigPath);
    else kubeConfig.loadFromDefault();
  } catch (err) {
    throw new UsageError(`cannot load kubeconfig ${kubeconfigPath ?? "(default)"}: ${(err as Error).message}`, null);
  }
  const context = flags.context ?? file.context;
  if (context) {
    if (!kubeConfig.getContextObject(context)) throw new UsageError(`context ${JSON.stringify(context)} is not in the kubeconfig`, null);
    kubeConfig.setCurrentContext(context);
  }
  // --registry names one address for everything; otherwise the engine reads KCE_REGISTRY(_PUSH) itself,
  // and the file's registry applies only when that is unset.
  const registry: RegistryOptions | undefined = flags.registry
    ? { host: flags.registry }
    : env.KCE_REGISTRY
      ? undefined
      : file.registry;
  const builder = flags.builder ?? (env.KCE_BUILDER as BuilderKind | undefined) ?? file.builder;
  const namespace = flags.namespace ?? env.KCE_NAMESPACE ?? file.namespace;
  // The engine reads KCE_BUILDKIT_MODE and KCE_INSECURE_REGISTRIES itself: pass the file's only when they are unset.
  const buildkitMode = engine.buildkitMode ?? (env.KCE_BUILDKIT_MODE ? undefined : file.buildkitMode);
  const insecureRegistries = engine.insecureRegistries ?? (env.KCE_INSECURE_REGISTRIES ? undefined : file.insecureRegistries);
  const contextCompression = engine.contextCompression ?? (env.KCE_CONTEXT_COMPRESSION ? undefined : file.contextCompression);
  return {
    kubeConfig,
    ...(namespace ? { namespace } : {}),
    ...(builder ? { builder } : {}),
    ...(buildkitMode ? { buildkitMode } : {}),
    ...(insecureRegistries ? { insecureRegistries } : {}),
    ...(contextCompression !== undefined ? { contextCompression } : {}),
    ...(registry ? { registry } : {}),
    ...(file.builderImages ? { builderImages: file.builderImages } : {}),
    ...(file.pool ? { pool: file.pool } : {}),
    ...(file.timeouts ? { timeouts: file.timeouts } : {}),
    ...(file.labels ? { labels: file.labels } : {}),
    ...(file.serviceAccountName ? { serviceAccountName: file.serviceAccountName } : {}),
    ...(file.nodeSelector ? { nodeSelector: file.nodeSelector } : {}),
  };
}

/** The engine a command line configures: its flags, the config file they name, the environment. */
export function createEngine(cmd: Pick<ParsedCommand, "global" | "engine">, env: Record<string, string | undefined>): KubernetesEngine {
  return new KubernetesEngine(engineOptions(cmd.global, readConfigFile(cmd.global, env), env, cmd.engine), env);
}
