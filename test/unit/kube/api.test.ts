// ClusterApi's new verbs on the wire, against a scripted API server: the requests they send (path, query,
// content type, body) and how they read "not found" and "forbidden".
import type http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { KubernetesApiError } from "../../../src/errors.js";
import { ClusterApi } from "../../../src/kube/api.js";
import { json, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.js";

interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string;
  body: unknown;
}

const servers: FakeApiServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A ClusterApi over a server that answers each request with `answer(seen)` and records what it saw. */
async function apiAnswering(answer: (seen: Seen) => [number, unknown]): Promise<{ api: ClusterApi; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = await startFakeApiServer((url, req: http.IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const request: Seen = {
        method: req.method ?? "",
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        contentType: req.headers["content-type"] ?? "",
        body: text ? (JSON.parse(text) as unknown) : null,
      };
      seen.push(request);
      const [code, body] = answer(request);
      json(res, code, body);
    });
  });
  servers.push(server);
  return { api: new ClusterApi(server.client), seen };
}

const status = (code: number, reason: string): [number, unknown] => [code, { kind: "Status", status: "Failure", code, reason, message: reason }];

describe("ClusterApi.configMapIn", () => {
  it("reads the ConfigMap of another namespace", async () => {
    const { api, seen } = await apiAnswering(() => [200, { metadata: { name: "local-registry-hosting" }, data: { k: "v" } }]);
    expect((await api.configMapIn("kube-public", "local-registry-hosting"))?.data).toEqual({ k: "v" });
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(["GET /api/v1/namespaces/kube-public/configmaps/local-registry-hosting"]);
  });

  it.each([
    [404, "NotFound"],
    [403, "Forbidden"],
  ])("answers null for %i (nothing published to us)", async (code, reason) => {
    const { api } = await apiAnswering(() => status(code, reason));
    expect(await api.configMapIn("kube-public", "local-registry-hosting")).toBeNull();
  });

  it("throws any other failure", async () => {
    const { api } = await apiAnswering(() => status(500, "InternalError"));
    await expect(api.configMapIn("kube-public", "x")).rejects.toBeInstanceOf(KubernetesApiError);
  });
});

describe("ClusterApi.secrets", () => {
  it("creates, lists by label, merge-patches and deletes in the client's namespace", async () => {
    const { api, seen } = await apiAnswering((s) => (s.method === "GET" ? [200, { items: [{ metadata: { name: "s1" } }] }] : [200, { metadata: { name: "s1" } }]));
    await api.secrets.create({ metadata: { name: "s1" } });
    expect((await api.secrets.list("a=b")).map((s) => s.metadata?.name)).toEqual(["s1"]);
    await api.secrets.patch("s1", { metadata: { ownerReferences: [] } });
    expect(await api.secrets.deleteIfExists("s1")).toBe(true);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      "POST /api/v1/namespaces/ns/secrets",
      "GET /api/v1/namespaces/ns/secrets",
      "PATCH /api/v1/namespaces/ns/secrets/s1",
      "DELETE /api/v1/namespaces/ns/secrets/s1",
    ]);
    expect(seen[1]?.query.labelSelector).toBe("a=b");
    expect(seen[2]?.contentType).toBe("application/merge-patch+json");
    expect(seen[2]?.body).toEqual({ metadata: { ownerReferences: [] } });
  });

  it("not found: patch → null, deleteIfExists → false; other failures throw", async () => {
    const { api } = await apiAnswering(() => status(404, "NotFound"));
    expect(await api.secrets.patch("gone", { metadata: {} })).toBeNull();
    expect(await api.secrets.deleteIfExists("gone")).toBe(false);
    const forbidden = await apiAnswering(() => status(403, "Forbidden"));
    await expect(forbidden.api.secrets.deleteIfExists("x")).rejects.toMatchObject({ statusCode: 403 });
  });
});

describe("ClusterApi deletes and events", () => {
  it("a Job delete sends its options as query and again, with the uid precondition, as body", async () => {
    const { api, seen } = await apiAnswering(() => [200, { kind: "Status", status: "Success" }]);
    await api.jobs.deleteIfExists("j1", { propagationPolicy: "Background", gracePeriodSeconds: 0, preconditions: { uid: "u-1" } });
    expect(seen[0]?.query).toMatchObject({ propagationPolicy: "Background", gracePeriodSeconds: "0" });
    expect(seen[0]?.body).toEqual({ propagationPolicy: "Background", gracePeriodSeconds: 0, preconditions: { uid: "u-1" } });
  });

  it("a precondition that fails is a 409 KubernetesApiError (the object is another one now)", async () => {
    const { api } = await apiAnswering(() => status(409, "Conflict"));
    await expect(api.jobs.deleteIfExists("j1", { preconditions: { uid: "old" } })).rejects.toMatchObject({ statusCode: 409 });
  });

  it("events of one kind of object: selected by kind and name, oldest first", async () => {
    const { api, seen } = await apiAnswering(() => [
      200,
      {
        items: [
          { metadata: { name: "e2" }, involvedObject: {}, lastTimestamp: "2026-01-01T00:00:02Z" },
          { metadata: { name: "e1" }, involvedObject: {}, lastTimestamp: "2026-01-01T00:00:01Z" },
        ],
      },
    ]);
    const events = await api.eventsFor("j1", { kind: "Job" });
    expect(seen[0]?.query.fieldSelector).toBe("involvedObject.kind=Job,involvedObject.name=j1");
    expect(events.map((e) => e.metadata?.name)).toEqual(["e1", "e2"]);
    await api.eventsFor("p1");
    expect(seen[1]?.query.fieldSelector).toBe("involvedObject.name=p1");
  });
});
