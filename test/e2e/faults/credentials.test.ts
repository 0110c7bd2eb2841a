// Row 15 of the reliability matrix: wrong registry credentials are a typed error (a push refused → BuildError
// asking to check the username and password; a pull refused → the container's ImagePullError), and a sentinel
// password used for them appears nowhere it could leak: not in any pod or Job spec (env, args, annotations),
// event, our output, log messages or error messages, nor in the logs of the kubelet, containerd and the API
// server (containerd once logged auth configs). The per-build Secret is the only place that holds it.
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, ImagePullError } from "../../../src/index.js";
import { jobsCollection, podsCollection, ResourceWatch } from "../../../src/kube/watch.js";
import { contextDir, Recorder } from "../build/helpers.js";
import { collect, deleteNamespace, engineNamespace, expectNoLeftovers, baseImage, type EngineNamespace } from "../engine/helpers.js";
import { authRegistry, basicAuth, leaksIn, pushWith } from "../support/registry-auth.js";
import { failure, withinBound } from "./helpers.js";

const registry = authRegistry();
const { host: AUTH, user: USER } = registry;
const SENTINEL = `kce-sentinel-${randomBytes(12).toString("hex")}`;
const LOGS = join(process.env.KCE_HOME ?? join(process.env.HOME ?? "/root", ".cache/kce"), "cluster/logs");
const DAEMON_LOGS = ["kubelet.log", "containerd.log", "kube-apiserver.log", "kube-controller-manager.log"];

let ns: EngineNamespace;
let dir: string;
let pods: Recorder<V1Pod>;
let jobs: Recorder<V1Job>;
const output: string[] = [];
const messages: string[] = [];
const logOffsets = new Map<string, number>();

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
  // Every version of every pod and Job in the namespace, ours by label or not: the leak check trusts no label.
  pods = new Recorder(new ResourceWatch<V1Pod>(ns.admin, podsCollection(ns.namespace)));
  jobs = new Recorder(new ResourceWatch<V1Job>(ns.admin, jobsCollection(ns.namespace)));
  await Promise.all([pods.ready, jobs.ready]);
});

afterAll(async () => {
  await pods?.stop();
  await jobs?.stop();
  rmSync(dir, { recursive: true, force: true });
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

describe("row 15 — wrong credentials, and no credential leaks", () => {
  // row 15 | push with a wrong password (build to an htpasswd registry) | BuildError naming the registry and asking to check the username and password, within 90 s; nothing left
  it("a push with a wrong password is a BuildError asking to check the credentials", async () => {
    const context = contextDir(dir, { Dockerfile: `FROM ${baseImage()}\nRUN echo creds-${Date.now()}\n` });
    const engine = ns.engine({ builder: "kaniko", ...pushWith(registry, SENTINEL), log: (m) => messages.push(m) });
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
    withinBound("row15-push-wrong-password", ms, 30_000);
    await expectNoLeftovers(ns.admin, 30_000);
  });

  // row 15 | pull with a wrong password (run with a dockerconfigjson pull Secret) | the container `exited` 125 with an ImagePullError carrying the registry's refusal, after the pull grace
  it("a pull with a wrong password is an ImagePullError", async () => {
    const { admin } = ns;
    const auths = { [AUTH]: { auth: basicAuth(USER, SENTINEL) } };
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
      "pods (spec, env, args, annotations, status)": pods.json(),
      jobs: jobs.json(),
      events: JSON.stringify(events.items),
      "engine output": output.join(""),
      "engine log and error messages": messages.join("\n"),
    };
    for (const name of DAEMON_LOGS) haystacks[`${name} (this run)`] = logSince(name);
    expect(pods.names().length, "no pod was recorded: the leak check would prove nothing").toBeGreaterThan(0);
    expect(jobs.names().length).toBeGreaterThan(0);
    expect(haystacks["events"]).toMatch(/Failed/); // the pull failure was reported, without the password
    // The daemons did log the refused pull: the part of their logs searched is the right one.
    expect(haystacks["kubelet.log (this run)"]).toContain("kce-e2e/private");
    expect(haystacks["containerd.log (this run)"]).toContain("kce-e2e/private");
    const needles = [SENTINEL, Buffer.from(SENTINEL).toString("base64"), basicAuth(USER, SENTINEL)];
    expect(leaksIn(haystacks, needles), "the sentinel password leaked").toEqual([]);
  });
});
