/**
 * The contract's `run` options that need translating before they fit a pod: environment strings, the user,
 * and volumes. Pure; every problem is an `InvalidInputError` raised before anything reaches the cluster.
 */
import type { V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { RunOptions } from "../contract.js";
import { InvalidInputError } from "../errors.js";
import { parsePortBindings, type PortForwardSpec } from "./ports.js";

/**
 * `"KEY=value"` strings → env vars. The value may be empty (`"KEY="`); a later entry for the same key
 * replaces an earlier one (as with `docker run -e`).
 * @throws InvalidInputError for an entry without `=` (we cannot read the client's environment into a remote
 *   pod implicitly), an empty key, or a key with control characters
 */
export function parseEnvironment(environment: readonly string[] | null | undefined): V1EnvVar[] {
  const byName = new Map<string, string>();
  for (const entry of environment ?? []) {
    if (typeof entry !== "string") throw new InvalidInputError(`environment entry ${JSON.stringify(entry)} is not a string`);
    const eq = entry.indexOf("=");
    if (eq < 0) {
      throw new InvalidInputError(
        `environment entry ${JSON.stringify(entry)} has no "=": pass "KEY=value" (an empty value is "KEY=")`,
      );
    }
    const name = entry.slice(0, eq);
    if (name === "" || /[\u0000-\u001f\u007f]/.test(name)) {
      throw new InvalidInputError(`environment entry ${JSON.stringify(entry)}: the variable name is empty or invalid`);
    }
    byName.delete(name);
    byName.set(name, entry.slice(eq + 1));
  }
  return [...byName].map(([name, value]) => ({ name, value }));
}

/** A numeric user and group for the container's `securityContext`. */
export interface RunAsUser {
  runAsUser: number;
  /** Absent when the user gave no group: the image's / runtime's default group applies. */
  runAsGroup?: number;
}

const MAX_ID = 2147483647;

function numericId(part: string, what: string, user: string | number): number {
  const text = part.trim();
  if (text === "root") return 0;
  if (/^\d+$/.test(text) && Number(text) <= MAX_ID) return Number(text);
  if (/^\d+$/.test(text)) throw new InvalidInputError(`user ${JSON.stringify(user)}: ${what} ${text} is too large`);
  throw new InvalidInputError(
    `user ${JSON.stringify(user)}: ${what} ${JSON.stringify(text)} is a name, but Kubernetes runs containers by ` +
      `numeric id (runAsUser/runAsGroup) and cannot look names up in the image; pass the number ` +
      `(e.g. 1000 for repo2docker's default user) or "root"`,
  );
}

/**
 * The contract's `user` (`1000`, `"1000"`, `"1000:100"`, `"root"`, `"root:root"`) → numeric ids.
 * @returns null when no user was given (the image's USER applies)
 * @throws InvalidInputError for names other than "root", negative or too large ids, and malformed values
 */
export function parseUser(user: string | number | null | undefined): RunAsUser | null {
  if (user === null || user === undefined || user === "") return null;
  if (typeof user === "number") {
    if (!Number.isInteger(user) || user < 0 || user > MAX_ID) {
      throw new InvalidInputError(`user ${user} is not a uid (an integer in 0–${MAX_ID})`);
    }
    return { runAsUser: user };
  }
  const parts = user.split(":");
  if (parts.length > 2) throw new InvalidInputError(`user ${JSON.stringify(user)}: expected "uid" or "uid:gid"`);
  const runAsUser = numericId(parts[0] ?? "", "the user", user);
  if (parts.length === 1) return { runAsUser };
  return { runAsUser, runAsGroup: numericId(parts[1] ?? "", "the group", user) };
}

/** Key prefix of a volume backed by a PersistentVolumeClaim: `pvc:<claim>` or `pvc:<claim>/<subPath>`. */
export const PVC_PREFIX = "pvc:";
/** Key prefix of a volume backed by a directory on the node: `node:/absolute/path`. */
export const NODE_PATH_PREFIX = "node:";

/** Volumes and their mounts for the run container. */
export interface RunVolumes {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
}

const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

function target(key: string, spec: unknown): { bind: string; readOnly: boolean } {
  const value = typeof spec === "string" ? { bind: spec, mode: "rw" } : spec;
  if (typeof value !== "object" || value === null || typeof (value as { bind?: unknown }).bind !== "string") {
    throw new InvalidInputError(`volume ${JSON.stringify(key)}: expected {bind: "/path/in/container", mode: "rw"|"ro"}`);
  }
  const { bind, mode = "rw" } = value as { bind: string; mode?: unknown };
  if (!bind.startsWith("/")) {
    throw new InvalidInputError(`volume ${JSON.stringify(key)}: the bind path ${JSON.stringify(bind)} must be absolute`);
  }
  if (mode !== "rw" && mode !== "ro") {
    throw new InvalidInputError(`volume ${JSON.stringify(key)}: mode ${JSON.stringify(mode)} must be "rw" or "ro"`);
  }
  return { bind, readOnly: mode === "ro" };
}

function source(key: string, name: string): { volume: V1Volume; subPath?: string } {
  if (key.startsWith(PVC_PREFIX)) {
    const rest = key.slice(PVC_PREFIX.length);
    const slash = rest.indexOf("/");
    const claimName = slash < 0 ? rest : rest.slice(0, slash);
    const subPath = slash < 0 ? "" : rest.slice(slash + 1);
    if (!DNS_SUBDOMAIN.test(claimName)) {
      throw new InvalidInputError(`volume ${JSON.stringify(key)}: ${JSON.stringify(claimName)} is not a claim name`);
    }
    if (subPath.split("/").includes("..")) {
      throw new InvalidInputError(`volume ${JSON.stringify(key)}: the sub-path must not contain ".."`);
    }
    const volume: V1Volume = { name, persistentVolumeClaim: { claimName } };
    return subPath ? { volume, subPath } : { volume };
  }
  const path = key.slice(NODE_PATH_PREFIX.length);
  if (!path.startsWith("/")) {
    throw new InvalidInputError(`volume ${JSON.stringify(key)}: the node path must be absolute (node:/path/on/node)`);
  }
  // No hostPath type check: a missing directory is created by the kubelet, as Docker does for bind sources.
  return { volume: { name, hostPath: { path } } };
}

/**
 * The contract's `volumes` → pod volumes. Only explicitly remote sources can be honoured:
 * `pvc:<claim>[/<subPath>]` (a PersistentVolumeClaim in the pod's namespace) and `node:/path` (a directory on
 * the node — needs a namespace whose Pod Security level allows hostPath). Values are `{bind, mode}` or a bind
 * path string (mode "rw").
 * @throws InvalidInputError for a client path (it cannot be mounted into a pod on a remote cluster), and for
 *   malformed keys, binds or modes, and two volumes on one bind path
 */
export function parseVolumes(volumes: RunOptions["volumes"] | null | undefined): RunVolumes {
  const result: RunVolumes = { volumes: [], mounts: [] };
  for (const [i, [key, spec]] of Object.entries(volumes ?? {}).entries()) {
    if (!key.startsWith(PVC_PREFIX) && !key.startsWith(NODE_PATH_PREFIX)) {
      throw new InvalidInputError(
        `volume ${JSON.stringify(key)}: a directory of this machine cannot be mounted into a pod on the cluster. ` +
          `Copy the files into the image instead (build with them in the context), or mount cluster storage ` +
          `with the key "${PVC_PREFIX}<claim-name>" (a PersistentVolumeClaim) or "${NODE_PATH_PREFIX}/path/on/node"`,
      );
    }
    const { bind, readOnly } = target(key, spec);
    if (result.mounts.some((m) => m.mountPath === bind)) {
      throw new InvalidInputError(`volume ${JSON.stringify(key)}: ${bind} is already the target of another volume`);
    }
    const name = `volume-${i}`;
    const { volume, subPath } = source(key, name);
    result.volumes.push(volume);
    result.mounts.push({ name, mountPath: bind, readOnly, ...(subPath ? { subPath } : {}) });
  }
  return result;
}

/** The contract's run options, checked once and translated into what the pod needs. */
export interface ValidatedRunOptions {
  /** Replaces the image CMD (→ container `args`); null keeps it. */
  command: string[] | null;
  env: V1EnvVar[];
  user: RunAsUser | null;
  volumes: RunVolumes;
  /** The forwards that `ports` names (the image's exposed ports are added later, with `publishAllPorts`). */
  forwards: PortForwardSpec[];
  publishAllPorts: boolean;
  remove: boolean;
}

/**
 * Checks every run option at once, before anything reaches the registry or the cluster.
 * @throws InvalidInputError naming the first bad option
 */
export function validateRunOptions(options: RunOptions): ValidatedRunOptions {
  const command = options.command;
  if (command !== undefined && (!Array.isArray(command) || command.some((c) => typeof c !== "string"))) {
    throw new InvalidInputError("command must be a list of strings");
  }
  return {
    command: command === undefined ? null : [...command],
    env: parseEnvironment(options.environment),
    user: parseUser(options.user),
    volumes: parseVolumes(options.volumes),
    forwards: parsePortBindings(options.ports),
    publishAllPorts: options.publishAllPorts === true,
    remove: options.remove === true,
  };
}
