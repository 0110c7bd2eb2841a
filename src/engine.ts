/**
 * KubernetesEngine: wires configuration, the Kubernetes client, the registry client, the builder and the pod
 * container together. No spec or status logic lives here (see pods/ and imaging/).
 */
import { randomBytes } from "node:crypto";
import { KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { Builder, type BuildStream } from "./imaging/builder.js";
import { isBuildArtifact } from "./imaging/plan.js";
import {
  resolveEngineConfig,
  resolveRegistry,
  type KubernetesEngineOptions,
  type RegistryCredentials,
  type RegistryOptions,
  type ResolvedEngineConfig,
  type ResolvedRegistry,
} from "./config.js";
import { collectGarbage, type GcOptions } from "./cleanup.js";
import { PodContainer } from "./container.js";
import type { CleanupAction } from "./pods/cleanup.js";
import type { BuildOptions, ContainerEngine, RunOptions } from "./contract.js";
import { ContainerEngineError, InvalidInputError } from "./errors.js";
import { formatImageReference, parseImageReference, resolveImageReference, type Image } from "./image.js";
import { ClusterApi } from "./kube/api.js";
import { KubeClient } from "./kube/client.js";
import { parseDockerConfigJson } from "./registry/docker-config.js";
import { engineAnnotations, engineLabels } from "./pods/labels.js";
import { withPublishedPorts } from "./pods/ports.js";
import { validateRunOptions } from "./pods/run-options.js";
import { runPodSpec } from "./pods/run-pod.js";
import type { RegistryAccess } from "./registry/access.js";
import { RegistryClient } from "./registry/client.js";
import { inspectImage, listImages } from "./registry/inspect.js";
import { LOCAL_REGISTRY_HOSTING, registryFromLocalRegistryHosting } from "./registry-hosting.js";

/** repo2docker's ContainerEngine on Kubernetes. Construction is cheap and does no I/O. */
export class KubernetesEngine implements ContainerEngine, RegistryAccess {
  readonly stringOutput = true as const;
  readonly config: ResolvedEngineConfig;
  readonly kubeConfig: KubeConfig;
  readonly client: KubeClient;
  /** The one seam the engine's own cluster calls go through. */
  private readonly api: ClusterApi;
  private readonly log: (message: string) => void;
  private registryPromise: Promise<ResolvedRegistry> | null = null;
  /** One registry HTTP client per registry (host as named, host as reached). */
  private readonly registryClients = new Map<string, RegistryClient>();
  /** Credentials read from `registry.credentialsSecret` when no registryCredentials are given. */
  private secretCredentials: RegistryCredentials | null = null;

  /** @throws InvalidInputError for a bad option (nothing is sent anywhere). */
  constructor(options: KubernetesEngineOptions = {}, env: Record<string, string | undefined> = process.env) {
    this.config = resolveEngineConfig(options, env);
    this.log = options.log ?? ((message) => process.stderr.write(`kce: ${message}\n`));
    this.kubeConfig = options.kubeConfig ?? loadDefaultKubeConfig();
    const namespace = this.config.namespace ?? contextNamespace(this.kubeConfig) ?? "default";
    this.client = new KubeClient({
      kubeConfig: this.kubeConfig,
      namespace,
      callTimeoutMs: this.config.timeouts.apiRequestMs,
    });
    this.api = new ClusterApi(this.client);
  }

  get namespace(): string {
    return this.client.namespace;
  }

  build(options: BuildOptions): BuildStream {
    return this.builder().build(options);
  }

  push(ref: string): AsyncIterable<string> {
    return this.builder().push(ref);
  }

  async inspectImage(ref: string): Promise<Image | null> {
    const registry = await this.registry();
    return inspectImage(this.registryClient(registry), ref, { defaultRegistry: registry.host });
  }

  /** The images in the engine's registry, without the builds' content tags and layer-cache repositories. */
  async images(): Promise<Image[]> {
    const registry = await this.registry();
    const images = await listImages(this.registryClient(registry), registry.host);
    return images.filter((image) => !image.tags.every(isBuildArtifact));
  }

  /**
   * Runs `ref` as a pod and resolves once its container started, or could never start (then `status` is
   * `exited` with a non-zero `exitcode` and a `reason`). Ports are forwarded while the container runs.
   * @throws InvalidInputError for bad options (nothing created); KubernetesApiError; CancelledError.
   */
  async run(ref: string, options: RunOptions = {}): Promise<PodContainer> {
    parseImageReference(ref);
    const run = validateRunOptions(options);
    const registry = await this.registry();
    const image = formatImageReference(resolveImageReference(ref, registry.host));
    const forwards = run.publishAllPorts ? withPublishedPorts(run.forwards, (await this.inspectImage(ref))?.config?.ExposedPorts) : run.forwards;
    const pod = runPodSpec({
      name: podName("run", ref),
      namespace: this.namespace,
      image,
      run,
      forwards,
      labels: engineLabels({ instance: this.config.instanceId, role: "container", extra: this.config.labels }),
      annotations: engineAnnotations({ createdAt: new Date(), image: ref, remove: run.remove }),
      activeDeadlineSeconds: this.config.timeouts.runSeconds || null,
      pullSecretName: registry.credentialsSecret,
      nodeSelector: this.config.nodeSelector,
      tolerations: this.config.tolerations,
      ...(this.config.serviceAccountName ? { serviceAccountName: this.config.serviceAccountName } : {}),
    });
    const container = await PodContainer.start({
      api: this.api,
      spec: pod,
      forwards: forwards.map((f) => ({ remotePort: f.containerPort, localPort: f.localPort, localAddress: f.localAddress })),
      graces: {
        pullGraceSeconds: this.config.timeouts.imagePullGraceSeconds,
        unschedulableGraceSeconds: this.config.timeouts.unschedulableGraceSeconds,
      },
      removeOnExit: run.remove,
      warn: this.log,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (container.status === "exited" && container.reason) this.log(`container ${container.id}: ${container.reason}`);
    return container;
  }

  /**
   * Deletes what crashed clients left behind in the namespace: finished builder Jobs and run pods, stuck
   * builders, orphaned credentials (with `all`, everything of ours). Returns what was (or would be) deleted.
   */
  async gc(options: GcOptions = {}): Promise<CleanupAction[]> {
    return collectGarbage(this.api, { ...options, buildDeadlineSeconds: this.config.timeouts.buildSeconds });
  }

  /** The registry: configured, or published by the cluster (KEP-1755 `local-registry-hosting`). */
  registry(): Promise<ResolvedRegistry> {
    this.registryPromise ??= this.discoverRegistry()
      .then(async (registry) => {
        await this.loadSecretCredentials(registry);
        return registry;
      })
      .catch((err: unknown) => {
        this.registryPromise = null;
        throw err;
      });
    return this.registryPromise;
  }

  /**
   * With only `registry.credentialsSecret` configured, the builders push with that Secret, and the engine's own
   * registry requests (inspectImage, images, the content-hash lookup) use it too: read it once. A Secret that
   * cannot be read leaves those requests anonymous, with a warning that says what to do.
   */
  private async loadSecretCredentials(registry: ResolvedRegistry): Promise<void> {
    if (!registry.credentialsSecret || this.config.registryCredentials) return;
    try {
      const doc = await this.api.dockerConfigOfSecret(registry.credentialsSecret);
      const found = doc === null ? null : (parseDockerConfigJson(doc, registry.apiHost) ?? parseDockerConfigJson(doc, registry.host));
      if (found) {
        this.secretCredentials = { registry: registry.host, ...found };
        return;
      }
      this.log(
        `registry Secret ${registry.credentialsSecret} ${doc === null ? "was not found or has no .dockerconfigjson" : `has no entry for ${registry.host}`}: ` +
          "the engine's own registry requests go unauthenticated",
      );
    } catch (err) {
      this.log(
        `cannot read registry Secret ${registry.credentialsSecret} (${err instanceof Error ? err.message : String(err)}): the engine's own ` +
          "registry requests go unauthenticated; allow `list` on Secrets or set registryCredentials",
      );
    }
  }

  /** The registry HTTP client, with the push credentials for the registry's host. */
  registryClient(registry: ResolvedRegistry): RegistryClient {
    const key = `${registry.host} ${registry.apiHost}`;
    const known = this.registryClients.get(key);
    if (known) return known;
    const credentials = this.config.registryCredentials ?? this.secretCredentials;
    const hostOptions = (host: string): { insecure: boolean; credentials: { username: string; password: string } | null; endpoint: string } => ({
      insecure: registry.insecure,
      endpoint: registry.apiHost,
      credentials:
        credentials && (credentials.registry === "" || sameHost(credentials.registry, host))
          ? { username: credentials.username, password: credentials.password }
          : null,
    });
    // Other registries images may name (push targets): plain HTTP when listed as insecure, and the credentials
    // for their host — so inspectImage of a push target answers (repo2docker asks before every build).
    const insecure = this.config.insecureRegistries;
    const others = [...insecure, ...(credentials?.registry ? [credentials.registry] : [])]
      .map(normalizeHost)
      .filter((host, i, all) => all.indexOf(host) === i && !sameHost(host, registry.host));
    const client = new RegistryClient({
      hosts: {
        [registry.host]: hostOptions(registry.host),
        ...Object.fromEntries(
          others.map((host) => [
            host,
            {
              insecure: insecure.some((i) => sameHost(i, host)),
              credentials: credentials && sameHost(credentials.registry, host) ? { username: credentials.username, password: credentials.password } : null,
            },
          ]),
        ),
      },
    });
    this.registryClients.set(key, client);
    return client;
  }

  private builder(): Builder {
    return new Builder({ registries: this, config: this.config, api: this.api, log: this.log });
  }

  private async discoverRegistry(): Promise<ResolvedRegistry> {
    if (this.config.registry) return this.config.registry;
    const given: RegistryOptions | null = await this.readLocalRegistryHosting();
    if (!given) {
      throw new InvalidInputError(
        "no registry configured: pass registry.host (CLI --registry, env KCE_REGISTRY), or publish one in the " +
          `cluster's ${LOCAL_REGISTRY_HOSTING.namespace}/${LOCAL_REGISTRY_HOSTING.name} ConfigMap (KEP-1755)`,
      );
    }
    return resolveRegistry(given);
  }

  /** The registry the cluster publishes; null when it publishes none or does not let us read it. */
  private async readLocalRegistryHosting(): Promise<RegistryOptions | null> {
    const { namespace, name, key } = LOCAL_REGISTRY_HOSTING;
    const configMap = await this.api.configMapIn(namespace, name);
    const document = configMap?.data?.[key];
    return document ? registryFromLocalRegistryHosting(document, this.config.runsInPod ? "pod" : "client") : null;
  }
}

/** Everything about a run that can be wrong without asking the cluster; throws InvalidInputError. */
/** `kce-<purpose>-<repository tail>-<random>`: readable in `kubectl get pods`, unique, a valid DNS label. */
export function podName(purpose: "run" | "build" | "push", ref: string): string {
  const tail = ref.replace(/[@:].*$/, "").split("/").pop() ?? "";
  const slug = tail.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 30);
  return ["kce", purpose, slug, randomBytes(4).toString("hex")].filter(Boolean).join("-");
}

function normalizeHost(h: string): string {
  return h.replace(/^https?:\/\//, "").replace(/\/.*$/, "").toLowerCase();
}

function sameHost(a: string, b: string): boolean {
  return normalizeHost(a) === normalizeHost(b);
}

function loadDefaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromDefault();
  } catch (err) {
    throw new ContainerEngineError(`cannot load a kubeconfig (KUBECONFIG, ~/.kube/config or in-cluster): ${String(err)}`, {
      cause: err,
    });
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new ContainerEngineError("the kubeconfig names no current cluster: set KUBECONFIG or pass --kubeconfig/--context");
  }
  return kubeConfig;
}

function contextNamespace(kubeConfig: KubeConfig): string | null {
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? null;
}

export type { ResolvedRegistry };
