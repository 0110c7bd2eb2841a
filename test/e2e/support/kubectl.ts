// kubectl — the one test/cluster/up built — for what must not go through src/: the cluster's own tests
// (test/e2e/cluster: a failure there points at the cluster, not at the engine), the RBAC setup (kustomize,
// tokens) and the suite's global setup and teardown.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { env, uniqueName } from "./cluster-env.js";

const run = promisify(execFile);

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `apply -f -`). */
  input?: string;
  /** Kill kubectl after this many ms; by default no limit, since kubectl's own `--timeout` flags bound the waits. */
  timeoutMs?: number;
}

/** The path of the cluster's kubectl (not whatever kubectl is on PATH: it may talk to another cluster). */
export function kubectlPath(): string {
  return `${env("KCE_BIN_DIR")}/kubectl`;
}

/** Runs kubectl; resolves with stdout, rejects with kubectl's stderr in the message. */
export async function kubectl(args: string[], options: KubectlOptions = {}): Promise<string> {
  const running = run(kubectlPath(), args, { maxBuffer: 16 << 20, timeout: options.timeoutMs ?? 0 });
  if (options.input !== undefined) running.child.stdin?.end(options.input);
  try {
    return (await running).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(" ")}: ${e.stderr || e.message}`);
  }
}

/** `kubectl apply` of one object, given as a plain object (JSON is YAML). */
export const apply = (manifest: object): Promise<string> => kubectl(["apply", "-f", "-"], { input: JSON.stringify(manifest) });

/** Creates a namespace and waits for its `default` ServiceAccount (pods are rejected without it). */
export async function createNamespace(prefix: string): Promise<string> {
  const ns = uniqueName(prefix);
  await kubectl(["create", "namespace", ns]);
  await kubectl(["-n", ns, "wait", "--for=create", "serviceaccount/default", "--timeout=60s"]);
  return ns;
}

/** Deletes the namespace and waits until it is gone; no-op for undefined (its creation failed). */
export async function deleteNamespace(ns: string | undefined): Promise<void> {
  if (ns) await kubectl(["delete", "namespace", ns, "--wait=true", "--timeout=120s", "--ignore-not-found"]);
}

/**
 * Waits until the pod has finished (phase Succeeded or Failed) and returns the phase: two `kubectl wait`s
 * race (one cannot wait for either phase), the loser is stopped.
 */
export async function waitForPodDone(ns: string, pod: string, timeoutSeconds = 150): Promise<"Succeeded" | "Failed"> {
  const bin = kubectlPath();
  const children: ReturnType<typeof spawn>[] = [];
  const waitFor = (phase: "Succeeded" | "Failed") =>
    new Promise<"Succeeded" | "Failed">((resolve, reject) => {
      const child = spawn(
        bin,
        ["-n", ns, "wait", `--for=jsonpath={.status.phase}=${phase}`, `pod/${pod}`, `--timeout=${timeoutSeconds}s`],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      children.push(child);
      let errOut = "";
      child.stderr?.on("data", (d: Buffer) => (errOut += d.toString()));
      child.on("close", (code) =>
        code === 0 ? resolve(phase) : reject(new Error(`pod ${ns}/${pod} not ${phase}: ${errOut.trim()}`)),
      );
    });
  try {
    return await Promise.any([waitFor("Succeeded"), waitFor("Failed")]);
  } catch (err) {
    const describe = await kubectl(["-n", ns, "describe", "pod", pod]).catch(() => "");
    throw new Error(`${(err as AggregateError).errors?.map(String).join("; ") ?? err}\n${describe}`);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
  }
}

/** The pod's log (its only container). */
export const logs = (ns: string, pod: string): Promise<string> => kubectl(["-n", ns, "logs", pod]);

/** The exit code of the pod's (first) container, once it terminated. */
export async function exitCode(ns: string, pod: string): Promise<number> {
  const out = await kubectl([
    "-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}",
  ]);
  return Number(out);
}

/** A Pod manifest for `kubectl apply`: `spec` is the pod's, never restarted. */
export function podManifest(ns: string, name: string, spec: object): object {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: ns }, spec: { restartPolicy: "Never", ...spec } };
}

/** A pod that runs `command` once in `image`; `extra` is merged into its spec (e.g. imagePullSecrets). */
export function runOncePod(ns: string, name: string, image: string, command: string[], extra: object = {}): object {
  return podManifest(ns, name, {
    terminationGracePeriodSeconds: 1,
    containers: [{ name: "main", image, imagePullPolicy: "IfNotPresent", command }],
    ...extra,
  });
}

/** A ConfigMap holding a Dockerfile: the build context of the builder tests. */
export function dockerfileConfigMap(ns: string, name: string, dockerfile: string): object {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data: { Dockerfile: dockerfile } };
}
