// The JupyterHub client and the request authenticator against a fake hub on loopback.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HubClient, HubRequestError, HubUnavailableError, mayUseService, serverUrl, type HubSettings } from "../../../src/service/hub.js";
import { RequestAuthenticator } from "../../../src/service/identity.js";
import { serverName } from "../../../src/service/naming.js";
import { StaticTokens } from "../../../src/service/tokens.js";
import { FakeHub } from "../../support/fake-hub.js";

let hub: FakeHub;
let client: HubClient;

function settings(apiUrl: string): HubSettings {
  return { apiUrl, apiToken: "service-token", publicUrl: "http://hub.example:8000/", serviceName: "binder", launchTimeoutSeconds: 30, tokenExpiresSeconds: 600 };
}

beforeEach(async () => {
  hub = new FakeHub();
  client = new HubClient(settings(await hub.start()));
  hub.tokens.set("alice-token", { name: "alice", scopes: ["access:services!service=binder", "read:users:name!user=alice"] });
  hub.tokens.set("bob-token", { name: "bob", scopes: ["access:services"] });
  hub.tokens.set("carol-token", { name: "carol", scopes: ["read:users:name!user=carol"] });
});
afterEach(async () => {
  await hub.stop();
});

describe("HubClient", () => {
  it("identifies a user's token with its scopes; unknown tokens and service tokens are nobody", async () => {
    expect(await client.identify("alice-token")).toEqual({ name: "alice", scopes: ["access:services!service=binder", "read:users:name!user=alice"] });
    expect(await client.identify("nope")).toBeNull();
    expect(await client.identify("service-token")).toBeNull();
    expect(hub.requests[0]).toMatchObject({ method: "GET", path: "/user", token: "alice-token" });
  });

  it("starts a named server with user_options, follows its progress, and issues a token for that server only", async () => {
    expect(await client.startServer("alice", "repo-abc123", { image: "reg/x:1" })).toBe(true);
    expect(hub.servers.get("alice")?.get("repo-abc123")?.userOptions).toEqual({ image: "reg/x:1" });
    const progress = [];
    for await (const p of client.progress("alice", "repo-abc123")) progress.push(p);
    expect(progress.map((p) => p.message)).toEqual(["Server requested", "Pod created", "Server ready at /user/alice/repo-abc123/"]);
    expect(progress.at(-1)).toMatchObject({ ready: true, url: "/user/alice/repo-abc123/" });
    expect(await client.serverModel("alice", "repo-abc123")).toEqual({ ready: true, pending: null, url: "/user/alice/repo-abc123/", image: "reg/x:1" });
    const token = await client.serverToken("alice", "repo-abc123");
    expect(hub.tokens.get(token)).toEqual({ name: "alice", scopes: ["access:servers!server=alice/repo-abc123"] });
    expect(await client.startServer("alice", "repo-abc123", { image: "reg/x:1" })).toBe(false); // already running
  });

  it("reports a failed spawn and the hub's refusals with its message", async () => {
    hub.spawnFailure = "Image pull failed";
    await client.startServer("alice", "s", {});
    const last = [];
    for await (const p of client.progress("alice", "s")) last.push(p);
    expect(last.at(-1)).toMatchObject({ failed: true, message: "Image pull failed" });
    const weak = new HubClient({ ...client.settings, apiToken: "alice-token" });
    await expect(weak.startServer("bob", "s", {})).rejects.toThrow(HubRequestError);
    await expect(weak.startServer("bob", "s", {})).rejects.toThrow(/403 Action is not authorized/);
  });

  it("says the hub cannot be reached when it is down", async () => {
    await hub.stop();
    await expect(client.identify("alice-token")).rejects.toThrow(HubUnavailableError);
    await expect(client.identify("alice-token")).rejects.toThrow(/cannot be reached/);
  });
});

describe("RequestAuthenticator", () => {
  it.each([
    ["the service's own token", "Bearer own-token", { ok: true, identity: { kind: "token", name: "ci" } }],
    ["a hub user's token with this service's scope", "token alice-token", { ok: true, identity: { kind: "hub", name: "alice" } }],
    ["a hub user's token with access to all services", "Bearer bob-token", { ok: true, identity: { kind: "hub", name: "bob" } }],
    ["a hub user's token without access to the service", "Bearer carol-token", { ok: false, status: 403 }],
    ["an unknown token", "Bearer what", { ok: false, status: 403 }],
    ["no token", undefined, { ok: false, status: 401 }],
  ])("%s", async (_what, header, expected) => {
    const auth = new RequestAuthenticator(new StaticTokens({ ci: "own-token" }), client);
    expect(await auth.authenticate(header)).toMatchObject(expected);
  });

  it("asks the hub once a minute per token, and answers 503 while the hub is down", async () => {
    let now = 0;
    const auth = new RequestAuthenticator(null, client, () => now);
    await auth.authenticate("Bearer alice-token");
    await auth.authenticate("Bearer alice-token");
    expect(hub.requests.filter((r) => r.path === "/user")).toHaveLength(1);
    await hub.stop();
    now = 61_000;
    expect(await auth.authenticate("Bearer alice-token")).toMatchObject({ ok: false, status: 503 });
  });
});

describe("names and URLs", () => {
  it.each([
    ["http://192.0.2.2:8000/git/my-notebooks.git", /^my-notebooks-[0-9a-f]{6}$/],
    ["binder-examples-requirements", /^binder-examples-requ-[0-9a-f]{6}$/],
    ["https://example.org/???", /^repo-[0-9a-f]{6}$/],
  ])("serverName(%s)", (slug, pattern) => {
    expect(serverName(slug)).toMatch(pattern);
    expect(serverName(slug).length).toBeLessThanOrEqual(28);
  });

  it("distinguishes repositories with the same last segment", () => {
    expect(serverName("https://a.example/x/nb.git")).not.toBe(serverName("https://b.example/y/nb.git"));
  });

  it("serverUrl and mayUseService", () => {
    expect(serverUrl("http://hub.example:8000/", "/user/alice/s/")).toBe("http://hub.example:8000/user/alice/s/");
    expect(serverUrl("http://hub.example/jh", "/user/a/s/")).toBe("http://hub.example/jh/user/a/s/");
    expect(mayUseService(["access:services!service=binder"], "binder")).toBe(true);
    expect(mayUseService(["access:services!service=other"], "binder")).toBe(false);
  });
});
