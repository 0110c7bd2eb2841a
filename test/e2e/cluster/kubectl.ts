// Small helpers for the cluster's own e2e tests: they drive the cluster with
// the kubectl that test/cluster/up built (never with our engine), so a failure
// here points at the cluster, not at src/.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run eval "$(test/cluster/up)"`);
  return value;
}

/** Run kubectl; resolve with stdout, reject with stderr in the message. */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const bin = `${env("KCE_BIN_DIR")}/kubectl`;
  if (input === undefined) {
    try {
      const { stdout } = await run(bin, args, { maxBuffer: 16 << 20 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.join(" ")}: ${e.stderr || e.message}`);
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let errOut = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (errOut += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`kubectl ${args.join(" ")} exited ${code}: ${errOut}`)),
    );
    child.stdin.end(input);
  });
}

export const apply = (manifest: object): Promise<string> => kubectl(["apply", "-f", "-"], JSON.stringify(manifest));

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString("hex")}`;
}

/** Create a namespace and wait for its `default` ServiceAccount (pods are rejected without it). */
export async function createNamespace(prefix: string): Promise<string> {
  const ns = uniqueName(prefix);
  await kubectl(["create", "namespace", ns]);
  await kubectl(["-n", ns, "wait", "--for=create", "serviceaccount/default", "--timeout=60s"]);
  return ns;
}

export async function deleteNamespace(ns: string | undefined): Promise<void> {
  if (ns) await kubectl(["delete", "namespace", ns, "--wait=true", "--timeout=120s", "--ignore-not-found"]);
}

/**
 * Wait until the pod has finished (phase Succeeded or Failed) and return the
 * phase: two `kubectl wait`s race, the loser is stopped.
 */
export async function waitForPodDone(ns: string, pod: string, timeoutSeconds = 150): Promise<"Succeeded" | "Failed"> {
  const bin = `${env("KCE_BIN_DIR")}/kubectl`;
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

export const logs = (ns: string, pod: string): Promise<string> => kubectl(["-n", ns, "logs", pod]);

export async function exitCode(ns: string, pod: string): Promise<number> {
  const out = await kubectl([
    "-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}",
  ]);
  return Number(out);
}

/** A pod spec that runs `command` once (restartPolicy Never). */
export function runOncePod(ns: string, name: string, image: string, command: string[], extra: object = {}): object {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "main", image, imagePullPolicy: "IfNotPresent", command }],
      ...extra,
    },
  };
}

/** A ConfigMap holding a Dockerfile: the build context of the builder tests. */
export function dockerfileConfigMap(ns: string, name: string, dockerfile: string): object {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data: { Dockerfile: dockerfile } };
}
