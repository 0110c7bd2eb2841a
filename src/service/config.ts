/**
 * `kce serve` settings: a YAML/JSON document (the Deployment's ConfigMap) over defaults, validated once at
 * start-up with messages that name the offending key. Pure: the document and environment are passed in.
 */
import { InvalidInputError } from "../errors.js";
import { DEFAULT_PROVIDERS, type ProviderId, type ProviderSettings } from "./providers.js";
import type { UrlPolicy } from "./url-policy.js";

export interface ServiceLimits {
  /** Builds running at once (runner Jobs) in this service. */
  maxRunning: number;
  /** Builds of one repository running at once. */
  maxPerRepository: number;
  /** Builds waiting at most; more are refused with 503. */
  maxQueued: number;
  /** Largest repository (checkout) the runner fetches, bytes. */
  maxRepoBytes: number;
  /** Server-side limit of one build (runner Job's activeDeadlineSeconds), s. */
  buildTimeoutSeconds: number;
  /** Builds one token may have running or waiting at once (joining a build is free). */
  concurrentBuildsPerToken: number;
  /** Builds one token may start per hour. */
  buildsPerTokenPerHour: number;
}

export interface RunnerSettings {
  /** Image of the build runner; default: the service's own image (read from its pod). */
  image: string | null;
  command: string[];
  serviceAccountName: string;
  /** Finished runner Jobs stay this long (their logs answer late joiners), s. */
  ttlSecondsAfterFinished: number;
  userName: string;
  userId: number;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  /** Extra environment of the engine in the runner, e.g. KCE_BUILDER. */
  env: Record<string, string>;
  /** Runner pods kept started ahead of demand (a build claims one instead of waiting for a pod); 0: none. */
  warmSpares: number;
  /** A spare not claimed within this many seconds exits and is replaced. */
  spareMaxWaitSeconds: number;
}

/** Launching servers through a JupyterHub (the hub's URL and token come from JUPYTERHUB_API_URL / _TOKEN). */
export interface HubConfig {
  /** Where users reach the hub's proxy (the `url` of `ready`); default $JUPYTERHUB_PUBLIC_URL. */
  publicUrl: string | null;
  /** A spawn not ready within this time fails, s. */
  launchTimeoutSeconds: number;
  /** Lifetime of the server token handed out with `ready`, s. */
  tokenExpiresSeconds: number;
}

export interface ServiceConfig {
  host: string;
  port: number;
  /** Path prefix of every route, with leading and trailing `/` (JupyterHub service: `/services/binder/`). */
  baseUrl: string;
  /** Image names: `<prefix><slug>:<commit>`; a prefix without a registry host lands in the engine's registry. */
  imagePrefix: string;
  providers: ProviderSettings;
  urls: UrlPolicy;
  /** Directory of the mounted token Secret (one file per token). */
  tokensDir: string | null;
  /** Origins allowed to call the API from a browser (CORS); empty: same origin only. */
  corsOrigins: string[];
  limits: ServiceLimits;
  runner: RunnerSettings;
  hub: HubConfig;
  /** After `ready`, keep the stream open this long for the client to close it (binderhub-client expects to), s. */
  lingerSeconds: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_SERVICE_CONFIG: ServiceConfig = {
  host: "0.0.0.0",
  port: 8585,
  baseUrl: "/",
  imagePrefix: "binder/",
  providers: DEFAULT_PROVIDERS,
  urls: {
    allowedSchemes: ["https", "http"],
    allowedHosts: ["github.com", "gitlab.com"],
    allowedCidrs: [],
    blockedCidrs: [],
    blockedEndpoints: [],
  },
  tokensDir: null,
  corsOrigins: [],
  limits: {
    maxRunning: 4,
    maxPerRepository: 1,
    maxQueued: 100,
    maxRepoBytes: 1024 * MiB,
    buildTimeoutSeconds: 3600,
    concurrentBuildsPerToken: 4,
    buildsPerTokenPerHour: 60,
  },
  runner: {
    image: null,
    command: ["/usr/bin/tini", "--", "python", "-m", "repo2docker_kce.runner"],
    serviceAccountName: "kce-runner",
    ttlSecondsAfterFinished: 600,
    userName: "jovyan",
    userId: 1000,
    resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } },
    env: {},
    warmSpares: 1,
    spareMaxWaitSeconds: 600,
  },
  hub: { publicUrl: null, launchTimeoutSeconds: 300, tokenExpiresSeconds: 86_400 },
  lingerSeconds: 60,
};

type Doc = Record<string, unknown>;

function isObject(v: unknown): v is Doc {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function fail(path: string, expected: string, got: unknown): never {
  throw new InvalidInputError(`service config: ${path} must be ${expected} (got ${JSON.stringify(got)})`);
}

function section(doc: Doc, key: string, path: string): Doc {
  const v = doc[key];
  if (v === undefined) return {};
  if (!isObject(v)) fail(path, "a mapping", v);
  return v;
}

function pick<T>(doc: Doc, key: string, path: string, fallback: T, check: (v: unknown) => v is T, expected: string): T {
  const v = doc[key];
  if (v === undefined) return fallback;
  if (!check(v)) fail(path, expected, v);
  return v;
}

/** `pick` for the keys of one section: the path in messages is `<prefix>.<key>`. */
function reader(doc: Doc, prefix: string) {
  return <T>(key: string, fallback: T, check: (v: unknown) => v is T, expected: string): T =>
    pick(doc, key, prefix === "" ? key : `${prefix}.${key}`, fallback, check, expected);
}

const isString = (v: unknown): v is string => typeof v === "string";
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isPositive = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;
const isStringMap = (v: unknown): v is Record<string, string> => isObject(v) && Object.values(v).every(isString);

/** "512Mi", "2Gi", "100M", or a number of bytes. */
export function parseBytes(value: unknown, path: string): number {
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  const m = typeof value === "string" ? /^(\d+)\s*(Ki|Mi|Gi|K|M|G)?$/.exec(value.trim()) : null;
  // Zero is refused as a string too, as it is as a number.
  if (!m || Number(m[1]) === 0) fail(path, 'a size such as "512Mi" or a number of bytes', value);
  const unit = { "": 1, Ki: 1024, Mi: MiB, Gi: 1024 * MiB, K: 1e3, M: 1e6, G: 1e9 }[(m[2] ?? "") as "" | "Ki" | "Mi" | "Gi" | "K" | "M" | "G"];
  return Number(m[1]) * unit;
}

function normalizeBaseUrl(value: string): string {
  const trimmed = value.trim().replace(/^\/*/, "/").replace(/\/*$/, "/");
  return trimmed === "//" ? "/" : trimmed;
}

/**
 * The service's settings from a parsed config document and the environment (`KCE_SERVICE_TOKENS_DIR`,
 * `KCE_SERVICE_PORT`, `KCE_SERVICE_RUNNER_IMAGE`, `JUPYTERHUB_SERVICE_PREFIX` as the base URL).
 * @throws InvalidInputError naming the key that is wrong.
 */
export function resolveServiceConfig(doc: unknown, env: Record<string, string | undefined> = {}): ServiceConfig {
  if (doc !== undefined && doc !== null && !isObject(doc)) fail("(document)", "a mapping", doc);
  const root: Doc = isObject(doc) ? doc : {};
  const d = DEFAULT_SERVICE_CONFIG;
  const urlsDoc = section(root, "urls", "urls");
  const limitsDoc = section(root, "limits", "limits");
  const runnerDoc = section(root, "runner", "runner");
  const providersDoc = section(root, "providers", "providers");
  const [top, url, limit, run] = [reader(root, ""), reader(urlsDoc, "urls"), reader(limitsDoc, "limits"), reader(runnerDoc, "runner")];
  const enabled = pick(providersDoc, "enabled", "providers.enabled", d.providers.enabled as string[], isStrings, "a list of gh, gl, git");
  for (const p of enabled) if (!["gh", "gl", "git"].includes(p)) fail("providers.enabled", "a list of gh, gl, git", enabled);
  const providerBase = (id: "gh" | "gl"): string => {
    const s = section(providersDoc, id, `providers.${id}`);
    const base = pick(s, "baseUrl", `providers.${id}.baseUrl`, d.providers[id].baseUrl, isString, "a URL");
    if (!/^https?:\/\/[^/]+/.test(base)) fail(`providers.${id}.baseUrl`, "an http(s) URL", base);
    return base;
  };
  const port = env.KCE_SERVICE_PORT !== undefined ? Number(env.KCE_SERVICE_PORT) : top("port", d.port, isPositive, "a port number");
  if (!isPositive(port) || port > 65535) fail("port", "a port number", port);
  const limits: ServiceLimits = {
    maxRunning: limit("maxRunning", d.limits.maxRunning, isPositive, "a positive integer"),
    maxPerRepository: limit("maxPerRepository", d.limits.maxPerRepository, isPositive, "a positive integer"),
    maxQueued: limit("maxQueued", d.limits.maxQueued, isPositive, "a positive integer"),
    maxRepoBytes: limitsDoc.maxRepoBytes === undefined ? d.limits.maxRepoBytes : parseBytes(limitsDoc.maxRepoBytes, "limits.maxRepoBytes"),
    buildTimeoutSeconds: limit("buildTimeoutSeconds", d.limits.buildTimeoutSeconds, isPositive, "seconds"),
    concurrentBuildsPerToken: limit("concurrentBuildsPerToken", d.limits.concurrentBuildsPerToken, isPositive, "a positive integer"),
    buildsPerTokenPerHour: limit("buildsPerTokenPerHour", d.limits.buildsPerTokenPerHour, isPositive, "a positive integer"),
  };
  const resourcesDoc = section(runnerDoc, "resources", "runner.resources");
  const runner: RunnerSettings = {
    image: env.KCE_SERVICE_RUNNER_IMAGE ?? run<string | null>("image", d.runner.image, isString, "an image reference"),
    command: run("command", d.runner.command, isStrings, "a list of strings"),
    serviceAccountName: run("serviceAccountName", d.runner.serviceAccountName, isString, "a name"),
    ttlSecondsAfterFinished: run("ttlSecondsAfterFinished", d.runner.ttlSecondsAfterFinished, isPositive, "seconds"),
    userName: run("userName", d.runner.userName, isString, "a user name"),
    userId: run("userId", d.runner.userId, isPositive, "a uid other than 0"),
    resources: {
      requests: pick(resourcesDoc, "requests", "runner.resources.requests", d.runner.resources.requests, isStringMap, "a mapping of strings"),
      limits: pick(resourcesDoc, "limits", "runner.resources.limits", d.runner.resources.limits, isStringMap, "a mapping of strings"),
    },
    env: run("env", d.runner.env, isStringMap, "a mapping of strings"),
    warmSpares: run("warmSpares", d.runner.warmSpares, isCount, "a number ≥ 0"),
    spareMaxWaitSeconds: run("spareMaxWaitSeconds", d.runner.spareMaxWaitSeconds, isPositive, "seconds"),
  };
  const hubKey = reader(section(root, "hub", "hub"), "hub");
  const hub: HubConfig = {
    publicUrl: env.JUPYTERHUB_PUBLIC_URL ?? hubKey<string | null>("publicUrl", d.hub.publicUrl, isString, "a URL"),
    launchTimeoutSeconds: hubKey("launchTimeoutSeconds", d.hub.launchTimeoutSeconds, isPositive, "seconds"),
    tokenExpiresSeconds: hubKey("tokenExpiresSeconds", d.hub.tokenExpiresSeconds, isPositive, "seconds"),
  };
  if (hub.publicUrl !== null && !/^https?:\/\/[^/]+/.test(hub.publicUrl)) fail("hub.publicUrl", "an http(s) URL", hub.publicUrl);
  const tokensDir = env.KCE_SERVICE_TOKENS_DIR ?? top<string | null>("tokensDir", d.tokensDir, isString, "a directory");
  return {
    host: top("host", d.host, isString, "an address"),
    port,
    baseUrl: normalizeBaseUrl(env.JUPYTERHUB_SERVICE_PREFIX ?? top("baseUrl", d.baseUrl, isString, "a path")),
    imagePrefix: top("imagePrefix", d.imagePrefix, isString, "an image name prefix"),
    providers: { gh: { baseUrl: providerBase("gh") }, gl: { baseUrl: providerBase("gl") }, enabled: enabled as ProviderId[] },
    urls: {
      allowedSchemes: url("allowedSchemes", d.urls.allowedSchemes, isStrings, "a list of schemes"),
      allowedHosts: url("allowedHosts", d.urls.allowedHosts, isStrings, "a list of host patterns"),
      allowedCidrs: url("allowedCidrs", d.urls.allowedCidrs, isStrings, "a list of CIDR ranges"),
      blockedCidrs: url("blockedCidrs", d.urls.blockedCidrs, isStrings, "a list of CIDR ranges"),
      blockedEndpoints: url("blockedEndpoints", d.urls.blockedEndpoints, isStrings, "a list of ip:port"),
    },
    tokensDir,
    corsOrigins: top("corsOrigins", d.corsOrigins, isStrings, "a list of origins"),
    limits,
    runner,
    hub,
    lingerSeconds: top("lingerSeconds", d.lingerSeconds, (v): v is number => typeof v === "number" && v >= 0, "seconds"),
  };
}
