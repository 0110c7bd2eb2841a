/**
 * `kce serve`: wires the engine, the cluster seam, the URL policy, the ref resolver, the build service and the
 * HTTP server together, takes over builds a previous service pod left running, and drains on SIGTERM.
 */
import { lookup } from "node:dns/promises";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubernetesEngine } from "../engine.js";
import { ContainerEngineError } from "../errors.js";
import { ClusterApi } from "../kube/api.js";
import { BuildService } from "./build-service.js";
import type { ServiceConfig } from "./config.js";
import { gitLsRemote } from "./git-refs.js";
import { ServiceHttpServer, type HealthCheck, type StaticFile } from "./http-server.js";
import { ServiceMetrics } from "./service-metrics.js";
import { SparePool } from "./spare-runners.js";
import type { RunnerPodSettings } from "./runner-job.js";
import { DirectoryTokens, StaticTokens, type TokenSource } from "./tokens.js";
import { UrlChecker } from "./url-policy.js";
import { HubClient } from "./hub.js";
import { RequestAuthenticator } from "./identity.js";

export interface ServeOptions {
  engine: KubernetesEngine;
  config: ServiceConfig;
  env: Record<string, string | undefined>;
  version: string;
  log: (message: string) => void;
  /** Stops the service (SIGTERM): no new builds, open streams get `graceMs` to finish. */
  signal: AbortSignal;
  graceMs: number;
  /** Called once listening (tests, `kce serve` prints it). */
  onListening?: (address: { host: string; port: number }) => void;
}

/** Engine settings the runner's own `kce` should share with the service (never the service's secrets). */
const RUNNER_ENV = [
  "KCE_BUILDER",
  "KCE_BUILDKIT_MODE",
  "KCE_KANIKO_IMAGE",
  "KCE_BUILDKIT_IMAGE",
  "KCE_REGISTRY",
  "KCE_REGISTRY_PUSH",
  "KCE_REGISTRY_INSECURE",
  "KCE_REGISTRY_SECRET",
  "KCE_INSECURE_REGISTRIES",
  "KCE_CONTEXT_COMPRESSION",
  "KCE_LAYER_CACHE",
  "KCE_CONTENT_ADDRESSED",
  // builder buildkit-pool: every runner sends its build to the same warm pool
  "KCE_POOL_NAME",
  "KCE_POOL_MAX_DAEMONS",
  "KCE_POOL_IDLE_SECONDS",
  "KCE_POOL_LIFETIME_SECONDS",
  "KCE_POOL_DRAIN_SECONDS",
  "KCE_POOL_MEMORY",
  "KCE_POOL_CACHE",
  "KCE_POOL_TENANT",
];

const PAGE_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
};

/** The page's files from dist/service/page (built by `npm run build`), read once. */
export function pageFiles(dir = fileURLToPath(new URL("./page/", import.meta.url))): (path: string) => StaticFile | null {
  const cache = new Map<string, StaticFile | null>();
  return (path) => {
    const file = path === "" ? "index.html" : path;
    if (!cache.has(file)) {
      const full = normalize(join(dir, file));
      const type = PAGE_TYPES[extname(full)];
      const ok = full.startsWith(dir) && type !== undefined && existsSync(full);
      cache.set(file, ok ? { body: readFileSync(full), contentType: type } : null);
    }
    return cache.get(file) ?? null;
  };
}

function tokenSource(config: ServiceConfig, env: Record<string, string | undefined>): TokenSource | null {
  if (config.tokensDir) return new DirectoryTokens(config.tokensDir);
  if (env.KCE_SERVICE_TOKEN) return new StaticTokens({ default: env.KCE_SERVICE_TOKEN });
  return null;
}

/** The JupyterHub this service belongs to, from the environment a hub gives its services; null without one. */
function hubClient(config: ServiceConfig, env: Record<string, string | undefined>): HubClient | null {
  const apiUrl = env.JUPYTERHUB_API_URL;
  const apiToken = env.JUPYTERHUB_API_TOKEN;
  if (!apiUrl || !apiToken) return null;
  const publicUrl = config.hub.publicUrl;
  if (publicUrl === null) {
    throw new ContainerEngineError("kce serve with a JupyterHub needs the hub's public URL: set hub.publicUrl (or JUPYTERHUB_PUBLIC_URL)");
  }
  return new HubClient({
    apiUrl,
    apiToken,
    publicUrl,
    serviceName: env.JUPYTERHUB_SERVICE_NAME ?? "binder",
    launchTimeoutSeconds: config.hub.launchTimeoutSeconds,
    tokenExpiresSeconds: config.hub.tokenExpiresSeconds,
  });
}

/** Runs the service until `options.signal` aborts and its streams drained. */
export async function serve(options: ServeOptions): Promise<void> {
  const { engine, config, env, log } = options;
  const api = new ClusterApi(engine.client);
  const tokens = tokenSource(config, env);
  const hub = hubClient(config, env);
  if (tokens === null && hub === null) {
    throw new ContainerEngineError(
      "kce serve needs a way to check requests: mount the token Secret (tokensDir / KCE_SERVICE_TOKENS_DIR), set " +
        "KCE_SERVICE_TOKEN, or run it as a JupyterHub service (JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN)",
    );
  }
  if (hub) log(`JupyterHub at ${hub.settings.apiUrl}: its users' tokens are accepted and their servers launched`);
  const apiEndpoints = (await api.apiServerEndpoints().catch(() => null)) ?? [];
  if (apiEndpoints.length === 0) log("cannot read the API server's endpoints (default/kubernetes): add them to urls.blockedEndpoints");
  const serverUrl = new URL(engine.client.server);
  const urls = new UrlChecker(
    {
      ...config.urls,
      blockedEndpoints: [
        ...config.urls.blockedEndpoints,
        ...apiEndpoints,
        `${serverUrl.hostname}:${serverUrl.port || (serverUrl.protocol === "https:" ? "443" : "80")}`,
      ],
    },
    async (host) => (await lookup(host, { all: true })).map((a) => a.address),
  );
  let runnerImage: Promise<string> | null = null;
  const ownImage = async (): Promise<string> => {
    if (config.runner.image) return config.runner.image;
    const pod = env.POD_NAME ? await api.pods.get(env.POD_NAME) : null;
    const image = pod?.spec?.containers?.[0]?.image;
    if (!image) throw new ContainerEngineError("the runner image is unknown: set runner.image (or POD_NAME for the service's own image)");
    return image;
  };
  const metrics = new ServiceMetrics();
  const spares: SparePool = new SparePool({
    api,
    // (called only once `service` below exists: the first refill comes after it)
    settings: (): Promise<RunnerPodSettings> => service.podSettings(),
    target: config.runner.warmSpares,
    maxWaitSeconds: config.runner.spareMaxWaitSeconds,
    buildTimeoutSeconds: config.limits.buildTimeoutSeconds,
    log,
  });
  const service: BuildService = new BuildService({
    spares,
    ...(hub ? { hub, publicUrl: new URL(config.baseUrl.replace(/^\//, ""), hub.settings.publicUrl).href } : {}),
    config,
    api,
    urls,
    resolveRef: gitLsRemote(),
    imageExists: async (image) => (await engine.inspectImage(image)) !== null,
    registryHost: async () => (await engine.registry()).host,
    runnerImage: () => (runnerImage ??= ownImage().catch((err: unknown) => {
      runnerImage = null;
      throw err;
    })),
    runnerEnv: Object.fromEntries(RUNNER_ENV.flatMap((k) => (env[k] !== undefined ? [[k, env[k] as string]] : []))),
    instance: engine.config.instanceId,
    metrics,
    graces: {
      pullGraceSeconds: engine.config.timeouts.imagePullGraceSeconds,
      unschedulableGraceSeconds: engine.config.timeouts.unschedulableGraceSeconds,
    },
    log,
  });
  spares.refill();
  // Spares that ended (given up waiting, evicted) are replaced, also when no build comes.
  const refill = setInterval(() => spares.refill(), 30_000);
  refill.unref();
  const adopted = await service.adoptRunningBuilds();
  if (adopted > 0) log(`following ${adopted} build(s) started before this service pod`);
  const health = async (): Promise<HealthCheck[]> => {
    const check = async (name: string, probe: () => Promise<unknown>): Promise<HealthCheck> => {
      try {
        await probe();
        return { service: name, ok: true };
      } catch (err) {
        return { service: name, ok: false, message: err instanceof Error ? err.message : String(err) };
      }
    };
    return Promise.all([
      check("Kubernetes API", () => api.jobs.list("kube-container-engine/role=runner")),
      check("Registry", async () => {
        const registry = await engine.registry();
        await engine.registryClient(registry).exists(`${registry.host}/kce-health-check:none`);
      }),
    ]);
  };
  const http = new ServiceHttpServer({
    config,
    service,
    auth: new RequestAuthenticator(tokens, hub),
    metrics,
    health,
    versions: () => ({
      binderhub: `kube-container-engine ${options.version}`,
      builder: config.runner.image ?? "(the service's own image)",
      builder_info: { engine: "repo2docker --engine kubernetes (kube-container-engine)", kce: options.version },
    }),
    page: pageFiles(),
    log,
  });
  const address = await http.listen();
  options.onListening?.(address);
  log(`build service listening on ${address.host}:${address.port}${config.baseUrl}`);
  await new Promise<void>((resolve) => {
    if (options.signal.aborted) resolve();
    options.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  log(`stopping: no new builds; ${service.activeBuilds} build(s) in progress keep running as Jobs`);
  clearInterval(refill);
  service.drain();
  await http.drain(options.graceMs);
}
