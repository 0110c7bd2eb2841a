// JupyterHub end to end: a real JupyterHub (KubeSpawner, configurable-http-proxy) on the local cluster with
// `kce serve` as its service `binder`. A user logs in, asks the service (through the hub's proxy) for a
// repository; the service builds it and the hub starts the user's server from the built image; the server
// answers through the proxy with the token the service returned.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { env } from "../support/cluster-env.js";
import { GitServer, type Pushed } from "../support/git-server.js";
import { JupyterHub, singleuserRepo } from "../support/jupyterhub.js";
import { kubectl } from "../support/kubectl.js";
import { deployService, gitSpec, jobsOf, readStream, serviceImage, testMachineUrls, undeployService, type Deployed, type ReceivedEvent } from "./helpers.js";

const USERS_NAMESPACE = "kce-hub-users";
const IMAGE_PREFIX = "kce-e2e-hub/";
const isEnd = (e: ReceivedEvent): boolean => e.data.phase === "ready" || e.data.phase === "failed";

let git: GitServer;
let hub: JupyterHub;
let deployed: Deployed | undefined;
let repo: Pushed;
let alice = "";
let bob = "";

/** The service through the hub's proxy, as users reach it. */
const viaHub = (spec: string, query = ""): string => `${hub.publicUrl}services/binder/build/${spec}${query ? `?${query}` : ""}`;

beforeAll(async () => {
  const nodeIp = env("KCE_NODE_IP");
  git = new GitServer(nodeIp);
  await git.start();
  await kubectl(["create", "namespace", USERS_NAMESPACE]);
  // The hub's ports and the service's token are chosen first: the service is configured with them.
  hub = new JupyterHub({ nodeIp, namespace: USERS_NAMESPACE, serviceUrl: "", imagePrefix: `${env("KCE_REGISTRY")}/${IMAGE_PREFIX}` });
  hub.proxyPort = 18000 + Math.floor(Math.random() * 1000) * 2;
  hub.hubPort = hub.proxyPort + 10_000;
  deployed = await deployService(
    await serviceImage(),
    {
      baseUrl: "/services/binder/",
      imagePrefix: IMAGE_PREFIX,
      urls: testMachineUrls(nodeIp),
      limits: { maxRepoBytes: "256Mi", buildTimeoutSeconds: 900 },
      runner: { serviceAccountName: "kce", env: { KCE_KANIKO_IMAGE: env("KCE_KANIKO_IMAGE") } },
      hub: { publicUrl: hub.publicUrl, launchTimeoutSeconds: 240 },
      lingerSeconds: 5,
    },
    { ci: randomBytes(24).toString("hex") },
    {
      env: { JUPYTERHUB_API_URL: hub.apiUrl, JUPYTERHUB_SERVICE_NAME: "binder" },
      secretEnv: { JUPYTERHUB_API_TOKEN: hub.serviceToken },
    },
  );
  hub.options.serviceUrl = deployed.url.replace(/\/$/, "");
  await hub.start();
  alice = await hub.login("alice");
  bob = await hub.login("bob");
  if ((await hub.loginStatus("alice", "wrong")) !== 403) throw new Error("the hub accepted a wrong password");
  repo = await git.push("notebooks", await singleuserRepo(env("KCE_PYTHON_BASE_IMAGE"), `marker-${randomBytes(3).toString("hex")}`));
}, 1_800_000);

afterAll(async () => {
  await hub?.destroy();
  await undeployService(deployed);
  await kubectl(["delete", "namespace", USERS_NAMESPACE, "--wait=true", "--timeout=180s", "--ignore-not-found"], { timeoutMs: 200_000 });
  await git?.stop();
}, 600_000);

describe("kce serve as a JupyterHub service", () => {
  it("a logged-in user gets a server started from the image the service built; it answers through the proxy", async () => {
    const result = await readStream(viaHub(gitSpec(repo.url, "main")), { token: alice, stop: isEnd, timeoutMs: 900_000 });
    const phases = result.events.map((e) => e.data.phase);
    expect(phases, hub.output().slice(-3000)).toContain("built");
    expect(phases).toContain("launching");
    const ready = result.events.at(-1)?.data ?? {};
    expect(ready.phase, JSON.stringify(result.events.slice(-3))).toBe("ready");
    expect(String(ready.url)).toMatch(new RegExp(`^${hub.publicUrl}user/alice/`));
    const status = await fetch(`${String(ready.url)}api/status`, { headers: { authorization: `token ${String(ready.token)}` } });
    expect(status.status).toBe(200);
    expect(await status.json()).toHaveProperty("started");
    expect(String(ready.image)).toContain(`${IMAGE_PREFIX}`);
  });

  it("a second user asking for the same repository gets ready without a new build", async () => {
    const runners = await jobsOf("runner");
    const result = await readStream(viaHub(gitSpec(repo.url, "main")), { token: bob, stop: isEnd, timeoutMs: 600_000 });
    expect(result.events[0]?.data).toMatchObject({ phase: "built", message: "Found built image, launching...\n" });
    const ready = result.events.at(-1)?.data ?? {};
    expect(ready.phase).toBe("ready");
    expect(String(ready.url)).toMatch(/\/user\/bob\//);
    expect(await jobsOf("runner")).toEqual(runners);
  });

  it("refuses a request without a hub token; user A's tokens reach neither B's server nor its controls", async () => {
    const none = await readStream(viaHub(gitSpec(repo.url, "main")));
    expect(none.status).toBe(401);
    const aliceLaunch = await readStream(viaHub(gitSpec(repo.url, "main")), { token: alice, stop: isEnd, timeoutMs: 300_000 });
    const bobLaunch = await readStream(viaHub(gitSpec(repo.url, "main")), { token: bob, stop: isEnd, timeoutMs: 300_000 });
    const aliceServerToken = String(aliceLaunch.events.at(-1)?.data.token);
    const bobUrl = String(bobLaunch.events.at(-1)?.data.url);
    // A's server token on B's server: refused by B's server (the hub checks the token's scope).
    const cross = await fetch(`${bobUrl}api/status`, { headers: { authorization: `token ${aliceServerToken}` }, redirect: "manual" });
    expect(cross.status).toBeGreaterThanOrEqual(300);
    expect(cross.status).not.toBe(200);
    // A's own token cannot stop B's server (the hub answers 404 for users a token may not see).
    const server = bobUrl.replace(/\/$/, "").split("/").pop() ?? "";
    const stop = await hub.api(`/users/bob/servers/${server}`, alice, { method: "DELETE" });
    expect([403, 404]).toContain(stop.status);
    const still = await fetch(`${bobUrl}api/status`, { headers: { authorization: `token ${String(bobLaunch.events.at(-1)?.data.token)}` } });
    expect(still.status).toBe(200);
  });

  it("with the hub stopped mid-build, the build completes and launching fails clearly; a retry once the hub is back launches", async () => {
    const files = await singleuserRepo(env("KCE_PYTHON_BASE_IMAGE"), "slow");
    const slow = await git.push("notebooks-slow", { ...files, Dockerfile: `${String(files.Dockerfile)}RUN sleep 15\n` });
    // Straight to the service (not through the hub's proxy, which stops with the hub).
    const direct = `${deployed?.url ?? ""}services/binder/build/${gitSpec(slow.url, "main")}`;
    let stopped: Promise<void> | null = null;
    const result = await readStream(direct, {
      token: alice,
      timeoutMs: 900_000,
      stop: (e) => {
        if (stopped === null && e.data.phase === "building") stopped = hub.stop();
        return isEnd(e);
      },
    });
    await stopped;
    expect(stopped).not.toBeNull();
    const phases = result.events.map((e) => e.data.phase);
    expect(phases).toContain("built");
    const failed = result.events.at(-1)?.data ?? {};
    expect(failed.phase).toBe("failed");
    expect(String(failed.message)).toMatch(/^Launching failed: JupyterHub at .* cannot be reached/);
    await hub.start();
    const retry = await readStream(viaHub(gitSpec(slow.url, "main")), { token: alice, stop: isEnd, timeoutMs: 600_000 });
    expect(retry.events[0]?.data).toMatchObject({ phase: "built", message: "Found built image, launching...\n" });
    expect(retry.events.at(-1)?.data.phase).toBe("ready");
  });
});
