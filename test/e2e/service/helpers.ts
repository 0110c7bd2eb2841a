// Setup of the build service's e2e tests: its image built by kce in the cluster (scripts/service-image), the
// service deployed from manifests/service/ through an overlay (the image, a token Secret, the tests' settings)
// exactly as a user would, a raw event-stream reader, and the unmodified @jupyterhub/binderhub-client.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import * as yaml from "js-yaml";
import { env, uniqueName } from "../support/cluster-env.js";
import { kubectl } from "../support/kubectl.js";

const run = promisify(execFile);

/** The repository (also when this file runs compiled elsewhere, as bench/ does). */
export const ROOT = ((): string => {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "scripts", "service-image")) && existsSync(join(dir, "manifests", "service"))) return dir;
  }
  return resolve(import.meta.dirname, "../../..");
})();
export const NAMESPACE = "kce";

/** Builds the service image with kce in the cluster (cached by content) and returns its reference. */
/**
 * Where the tests' git server (and hub) listen, as the service's URL policy must let them through: this machine's
 * address as pods reach it (KCE_NODE_IP) — a private address on kind (its network's gateway), which the policy
 * refuses unless listed in allowedCidrs.
 */
export function testMachineUrls(nodeIp: string): { allowedHosts: string[]; allowedCidrs: string[] } {
  return { allowedHosts: [nodeIp], allowedCidrs: [`${nodeIp}/32`] };
}

/** The API server as pods reach it, "address:port" of the `kubernetes` Service's endpoint: what the service refuses. */
export async function apiServerEndpoint(): Promise<string> {
  const path = "jsonpath={.subsets[0].addresses[0].ip}:{.subsets[0].ports[0].port}";
  return (await kubectl(["-n", "default", "get", "endpoints", "kubernetes", "-o", path])).trim();
}

export async function serviceImage(): Promise<string> {
  const { stdout } = await run(join(ROOT, "scripts", "service-image"), [], { cwd: ROOT, timeout: 1_500_000, maxBuffer: 16 << 20 });
  const ref = stdout.trim().split("\n").pop() ?? "";
  if (!ref.includes("/kce/service")) throw new Error(`scripts/service-image printed no image reference: ${JSON.stringify(stdout)}`);
  return ref;
}

export interface Deployed {
  /** http://<cluster IP>/ (the Service, reached from this machine through kube-proxy). */
  url: string;
  tokens: Record<string, string>;
  overlay: string;
}

/**
 * Applies manifests/service/ with an overlay (in the gitignored .kce/: kustomize wants a relative path to its
 * base) that sets the image, creates the token Secret and replaces the service's settings, then waits until
 * the Deployment is available.
 */
export async function deployService(
  image: string,
  config: object,
  tokens: Record<string, string>,
  extra: { env?: Record<string, string>; secretEnv?: Record<string, string> } = {},
): Promise<Deployed> {
  const overlay = join(ROOT, ".kce", uniqueName("service-overlay"));
  mkdirSync(overlay, { recursive: true });
  const at = image.indexOf("@");
  const [name, digest] = at >= 0 ? [image.slice(0, at), image.slice(at + 1)] : [image, undefined];
  const colon = name.lastIndexOf(":");
  const kustomization = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    resources: [relative(overlay, join(ROOT, "manifests", "service"))],
    images: [
      {
        name: "kube-container-engine/service",
        newName: colon > name.lastIndexOf("/") ? name.slice(0, colon) : name,
        ...(digest ? { digest } : { newTag: name.slice(colon + 1) }),
      },
    ],
    secretGenerator: [
      {
        name: "kce-service-tokens",
        namespace: NAMESPACE,
        literals: Object.entries(tokens).map(([k, v]) => `${k}=${v}`),
        options: { disableNameSuffixHash: true },
      },
    ],
    configMapGenerator: [
      {
        name: "kce-service-config",
        namespace: NAMESPACE,
        behavior: "replace",
        files: ["config.yaml"],
        options: { disableNameSuffixHash: true },
      },
    ],
  };
  // Settings of the service process (a JupyterHub's JUPYTERHUB_*): plain values, and secret ones from a Secret.
  const env = [
    ...Object.entries(extra.env ?? {}).map(([name, value]) => ({ name, value })),
    ...Object.keys(extra.secretEnv ?? {}).map((name) => ({ name, valueFrom: { secretKeyRef: { name: "kce-service-env", key: name } } })),
  ];
  if (extra.secretEnv) {
    kustomization.secretGenerator.push({
      name: "kce-service-env",
      namespace: NAMESPACE,
      literals: Object.entries(extra.secretEnv).map(([k, v]) => `${k}=${v}`),
      options: { disableNameSuffixHash: true },
    });
  }
  if (env.length > 0) {
    (kustomization as Record<string, unknown>).patches = [
      {
        target: { kind: "Deployment", name: "kce-service" },
        patch: yaml.dump({
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "kce-service", namespace: NAMESPACE },
          spec: { template: { spec: { containers: [{ name: "service", env }] } } },
        }),
      },
    ];
  }
  writeFileSync(join(overlay, "kustomization.yaml"), yaml.dump(kustomization));
  writeFileSync(join(overlay, "config.yaml"), yaml.dump(config));
  const existed = (await kubectl(["-n", NAMESPACE, "get", "deployment", "kce-service", "--ignore-not-found", "-o", "name"])).trim() !== "";
  await kubectl(["apply", "-k", overlay], { timeoutMs: 120_000 });
  // A Deployment left by an interrupted run would keep its pod and so its old settings.
  if (existed) await kubectl(["-n", NAMESPACE, "rollout", "restart", "deployment/kce-service"], { timeoutMs: 60_000 });
  await kubectl(["-n", NAMESPACE, "rollout", "status", "deployment/kce-service", "--timeout=240s"], { timeoutMs: 300_000 });
  const ip = (await kubectl(["-n", NAMESPACE, "get", "service", "kce-service", "-o", "jsonpath={.spec.clusterIP}"])).trim();
  const url = `http://${ip}/`;
  await waitReachable(url);
  return { url, tokens, overlay };
}

/**
 * Waits until the Service answers through kube-proxy: a ready pod is in its endpoints only after the
 * EndpointSlice controller and kube-proxy caught up (connections are refused until then).
 */
export async function waitReachable(url: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}health`, { signal: AbortSignal.timeout(10_000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${await res.text()}`;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the service at ${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/** Deletes what deployService applied (and everything the service created in its namespace). */
export async function undeployService(deployed: Deployed | undefined): Promise<void> {
  if (!deployed) return;
  await kubectl(["-n", NAMESPACE, "delete", "jobs", "-l", "app.kubernetes.io/managed-by=kube-container-engine", "--wait=true", "--timeout=120s"], {
    timeoutMs: 150_000,
  }).catch(() => undefined);
  await kubectl(["delete", "-k", deployed.overlay, "--wait=true", "--timeout=180s", "--ignore-not-found"], { timeoutMs: 200_000 });
  rmSync(deployed.overlay, { recursive: true, force: true });
}

/** The service's pods (name, and whether being deleted). */
export async function servicePods(): Promise<Array<{ name: string; deleting: boolean; ready: boolean }>> {
  const out = await kubectl(["-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/name=kce-service", "-o", "json"]);
  const list = JSON.parse(out) as {
    items: Array<{ metadata: { name: string; deletionTimestamp?: string }; status?: { conditions?: Array<{ type: string; status: string }> } }>;
  };
  return list.items.map((p) => ({
    name: p.metadata.name,
    deleting: p.metadata.deletionTimestamp !== undefined,
    ready: (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
  }));
}

/** Names of the Jobs in the service's namespace with this role (runner, builder). */
export async function jobsOf(role: "runner" | "builder"): Promise<string[]> {
  const out = await kubectl(["-n", NAMESPACE, "get", "jobs", "-l", `kube-container-engine/role=${role}`, "-o", "jsonpath={.items[*].metadata.name}"]);
  return out.split(/\s+/).filter(Boolean);
}

/** One event as received: its id and its data. */
export interface ReceivedEvent {
  id: string | null;
  data: Record<string, unknown> & { phase?: string; message?: string };
}

export interface StreamResult {
  status: number;
  events: ReceivedEvent[];
  /** Comments (`:keepalive`). */
  comments: string[];
}

/**
 * GETs an event stream and parses it: until it ends, until `stop(event)` says so (then the connection is
 * closed from this side), or until `timeoutMs`.
 */
export async function readStream(
  url: string,
  options: { token?: string; lastEventId?: string; stop?: (e: ReceivedEvent, all: ReceivedEvent[]) => boolean; timeoutMs?: number } = {},
): Promise<StreamResult> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), options.timeoutMs ?? 240_000);
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.lastEventId) headers["last-event-id"] = options.lastEventId;
  const events: ReceivedEvent[] = [];
  const comments: string[] = [];
  try {
    const res = await fetch(url, { headers, signal: ctrl.signal });
    const decoder = new TextDecoder();
    let buffer = "";
    let id: string | null = null;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let data: string | null = null;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) comments.push(line.slice(1));
          else if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("data: ")) data = line.slice(6);
        }
        if (data === null) continue;
        const event = { id, data: JSON.parse(data) as ReceivedEvent["data"] };
        events.push(event);
        if (options.stop?.(event, events)) {
          ctrl.abort();
          return { status: res.status, events, comments };
        }
      }
    }
    return { status: res.status, events, comments };
  } catch (err) {
    if (ctrl.signal.aborted && events.length > 0) return { status: 200, events, comments };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** `git/<escaped url>/<escaped ref>` */
export function gitSpec(url: string, ref: string): string {
  return `git/${encodeURIComponent(url)}/${encodeURIComponent(ref)}`;
}

/** A Dockerfile repository that bakes `marker` into the image and prints it when run. */
export function dockerfileRepo(marker: string, extra = ""): Record<string, string> {
  return { Dockerfile: `FROM ${env("KCE_BASE_IMAGE")}\nRUN echo ${marker} > /built\n${extra}CMD ["cat", "/built"]\n` };
}
