// Row 15 of the reliability matrix: wrong registry credentials are a typed error (a push refused → BuildError
// asking to check the username and password; a pull refused → the container's ImagePullError), and a sentinel
// password used for them appears nowhere it could leak: not in any pod or Job spec (env, args, annotations),
// event, our output, log messages or error messages, nor in the logs of the kubelet, containerd and the API
// server (containerd once logged auth configs). The per-build Secret is the only place that holds it.
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, ImagePullError } from "../../../src/index.js";
import { jobsCollection, podsCollection, ResourceWatch } from "../../../src/kube/watch.js";
import { collect, deleteNamespace, engineNamespace, expectNoLeftovers, baseImage, type EngineNamespace } from "../engine/helpers.js";
import { failure, withinBound } from "./helpers.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: source ~/.cache/kce/cluster.env`);
  return value;
}

const AUTH = env("KCE_AUTH_REGISTRY");
const AUTH_PUSH = process.env.KCE_AUTH_REGISTRY_PUSH ?? AUTH;
const USER = env("KCE_AUTH_USER");
const SENTINEL = `kce-sentinel-${randomBytes(12).toString("hex")}`;
const LOGS = join(process.env.KCE_HOME ?? join(process.env.HOME ?? "/root", ".cache/kce"), "cluster/logs");
const DAEMON_LOGS = ["kubelet.log", "containerd.log", "kube-apiserver.log", "kube-controller-manager.log"];

let ns: EngineNamespace;
let dir: string;
const seen = { pods: [] as V1Pod[], jobs: [] as V1Job[] };
const output: string[] = [];
const messages: string[] = [];
const logOffsets = new Map<string, number>();
const stopWatching = new AbortController();
let watching: Promise<unknown>;

/** Records every version of every pod and Job in the namespace while the tests run. */
async function record<T>(watch: ResourceWatch<T & { metadata?: object }>, into: T[]): Promise<void> {
  try {
    for await (const ev of watch.events(stopWatching.signal)) {
      if (ev.type === "relisted") into.push(...ev.objects);
      else into.push(ev.object);
    }
  } catch {
    // cancelled at the end
  }
}

/** What a daemon log gained since the test started (files are rotated above 64 MiB: then all of it). */
function logSince(name: string): string {
  const path = join(LOGS, name);
  if (!existsSync(path)) return "";
  const size = statSync(path).size;
  const from = (logOffsets.get(name) ?? 0) <= size ? (logOffsets.get(name) ?? 0) : 0;
  const buffer = Buffer.alloc(size - from);
  const fd = openSync(path, "r");
  try {
    readSync(fd, buffer, 0, buffer.length, from);
  } finally {
    closeSync(fd);
  }
  return buffer.toString("utf8");
}

beforeAll(async () => {
  for (const name of DAEMON_LOGS) logOffsets.set(name, existsSync(join(LOGS, name)) ? statSync(join(LOGS, name)).size : 0);
  ns = await engineNamespace("e2e-faults-creds");
  dir = mkdtempSync(join(tmpdir(), "kce-faults-creds-"));
  watching = Promise.all([
    record(new ResourceWatch<V1Pod>(ns.admin, podsCollection(ns.namespace)), seen.pods),
    record(new ResourceWatch<V1Job>(ns.admin, jobsCollection(ns.namespace)), seen.jobs),
  ]);
});

afterAll(async () => {
  stopWatching.abort();
  await watching;
  rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

describe("row 15 — wrong credentials, and no credential leaks", () => {
  // row 15 | push with a wrong password (build to an htpasswd registry) | BuildError naming the registry and asking to check the username and password, within 90 s; nothing left
  it("a push with a wrong password is a BuildError asking to check the credentials", async () => {
    const context = mkdtempSync(join(dir, "ctx-"));
    writeFileSync(join(context, "Dockerfile"), `FROM ${baseImage()}\nRUN echo creds-${Date.now()}\n`);
    const engine = ns.engine({
      builder: "kaniko",
      insecureRegistries: [AUTH_PUSH],
      registryCredentials: { registry: AUTH_PUSH, username: USER, password: SENTINEL },
      log: (m) => messages.push(m),
    });
    const tag = `${AUTH}/kce-e2e/creds-${randomBytes(4).toString("hex")}:1`;
    const stream = engine.build({ tag, path: context, push: true });
    const { error, ms } = await failure(
      (async () => {
        for await (const line of stream) output.push(line);
      })(),
    );
    messages.push(error.message, String(error.stack), ...((error as BuildError).logTail ?? []));
    expect(error).toBeInstanceOf(BuildError);
    if (!/check the username/.test(error.message)) console.log(`push failure as reported:\n${error.message}\n--- log tail:\n${(error as BuildError).logTail.join("\n")}\n--- output:\n${output.join("")}`);
    expect(error.message).toMatch(/unauthorized|UNAUTHORIZED|authentication required/);
    expect(error.message).toMatch(/check the username and password/);
    withinBound("row15-push-wrong-password", ms, 90_000);
    await expectNoLeftovers(ns.admin, 30_000);
  });

  // row 15 | pull with a wrong password (run with a dockerconfigjson pull Secret) | the container `exited` 125 with an ImagePullError carrying the registry's refusal, after the pull grace
  it("a pull with a wrong password is an ImagePullError", async () => {
    const { admin } = ns;
    const auths = { [AUTH]: { auth: Buffer.from(`${USER}:${SENTINEL}`).toString("base64") } };
    await admin.call("create", "secrets", (o) =>
      admin.core.createNamespacedSecret(
        {
          namespace: admin.namespace,
          body: {
            metadata: { name: "wrong-pull" },
            type: "kubernetes.io/dockerconfigjson",
            data: { ".dockerconfigjson": Buffer.from(JSON.stringify({ auths })).toString("base64") },
          },
        },
        o,
      ),
    );
    const engine = ns.engine({
      registry: { host: AUTH, insecure: true, credentialsSecret: "wrong-pull" },
      timeouts: { imagePullGraceSeconds: 5 },
      log: (m) => messages.push(m),
    });
    const started = Date.now();
    const container = await engine.run(`${AUTH}/kce-e2e/private:1`, { command: ["true"] });
    const ms = Date.now() - started;
    messages.push(String(container.reason), String(container.error?.message));
    expect(container.exitcode).toBe(125);
    expect(container.error).toBeInstanceOf(ImagePullError);
    expect(container.reason).toMatch(/401|nauthorized|authorization failed/i);
    withinBound("row15-pull-wrong-password", ms, 20_000);
    output.push(...(await collect(container.streamLogs())));
    await container.remove();
  });

  // row 15 | secret leakage | the sentinel password (plain, and base64 of user:password) is absent from every pod and Job version seen, env, args, annotations, events, our output, log and error messages, and the kubelet's, containerd's, API server's and controller-manager's logs
  it("the sentinel password is in no spec, event, output, message or daemon log", async () => {
    const events = await ns.admin.call("list", "events", (o) => ns.admin.core.listNamespacedEvent({ namespace: ns.namespace }, o));
    const haystacks: Record<string, string> = {
      "pods (spec, env, args, annotations, status)": JSON.stringify(seen.pods),
      jobs: JSON.stringify(seen.jobs),
      events: JSON.stringify(events.items),
      "engine output": output.join(""),
      "engine log and error messages": messages.join("\n"),
    };
    for (const name of DAEMON_LOGS) haystacks[`${name} (this run)`] = logSince(name);
    expect(seen.pods.length, "no pod was recorded: the leak check would prove nothing").toBeGreaterThan(0);
    expect(seen.jobs.length).toBeGreaterThan(0);
    expect(haystacks["events"]).toMatch(/Failed/); // the pull failure was reported, without the password
    // The daemons did log the refused pull: the part of their logs searched is the right one.
    expect(haystacks["kubelet.log (this run)"]).toContain("kce-e2e/private");
    expect(haystacks["containerd.log (this run)"]).toContain("kce-e2e/private");
    const needles = [SENTINEL, Buffer.from(SENTINEL).toString("base64"), Buffer.from(`${USER}:${SENTINEL}`).toString("base64")];
    const leaks: string[] = [];
    for (const [where, text] of Object.entries(haystacks)) for (const needle of needles) if (text.includes(needle)) leaks.push(where);
    expect(leaks, "the sentinel password leaked").toEqual([]);
  });
});
