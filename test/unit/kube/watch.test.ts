import { afterEach, describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { podsCollection, ResourceWatch, waitFor, type Watchable, type WatchEvent } from "../../../src/kube/watch.js";
import { CancelledError, DeadlineExceededError, KubernetesApiError } from "../../../src/errors.js";
import { json, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.js";

const pod = (name: string, rv: string, phase = "Pending"): V1Pod => ({
  metadata: { name, namespace: "ns", uid: `uid-${name}`, resourceVersion: rv },
  status: { phase },
});

let fake: FakeApiServer | null = null;
afterEach(async () => {
  await fake?.close();
  fake = null;
});

describe("ResourceWatch against a scripted API server", () => {
  it("resumes from the resourceVersion, relists on 410 with synthetic DELETEDs, re-watches when idle", async () => {
    let lists = 0;
    let watches = 0;
    fake = await startFakeApiServer((url, _req, res) => {
      if (url.searchParams.get("watch") !== "true") {
        lists++;
        json(res, 200, { metadata: { resourceVersion: lists === 1 ? "10" : "20" }, items: lists === 1 ? [pod("a", "5")] : [] });
        return;
      }
      watches++;
      res.writeHead(200, { "content-type": "application/json" });
      if (watches === 1) {
        res.write(JSON.stringify({ type: "MODIFIED", object: pod("a", "11", "Running") }) + "\n");
        setTimeout(() => res.destroy(), 20); // connection drops
      } else if (watches === 2) {
        res.end(JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old" } }) + "\n");
      } else if (watches === 3) {
        res.flushHeaders(); // then silence: the watch must give up on it after idleTimeoutMs
      } else {
        res.write(JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "30" } } }) + "\n");
        res.write(JSON.stringify({ type: "ADDED", object: pod("b", "31") }) + "\n");
      }
    });
    const w = new ResourceWatch<V1Pod>(fake.client, podsCollection("ns"), {
      labelSelector: "x=y",
      idleTimeoutMs: 200,
      backoff: { initialMs: 10, maxMs: 20 },
    });
    const seen: string[] = [];
    const started = Date.now();
    const ctrl = new AbortController();
    await expect(
      (async () => {
        for await (const ev of w.events(ctrl.signal)) {
          seen.push(describeEvent(ev));
          if (ev.type === "ADDED") ctrl.abort();
        }
      })(),
    ).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual(["relisted a", "MODIFIED a Running", "DELETED a (synthetic)", "relisted", "ADDED b"]);
    const watchRvs = fake.requests.filter((u) => u.searchParams.get("watch") === "true").map((u) => u.searchParams.get("resourceVersion"));
    expect(watchRvs).toEqual(["10", "11", "20", "20"]);
    const first = fake.requests[1]!;
    expect(first.searchParams.get("allowWatchBookmarks")).toBe("true");
    expect(first.searchParams.get("labelSelector")).toBe("x=y");
    expect(Date.now() - started).toBeLessThan(10_000); // the injected short backoff was used, not the real one
  });

  it("relists when the server has not caught up with our resourceVersion (504 ResourceVersionTooLarge)", async () => {
    let lists = 0;
    fake = await startFakeApiServer((url, _req, res) => {
      if (url.searchParams.get("watch") !== "true") {
        lists++;
        json(res, 200, { metadata: { resourceVersion: lists === 1 ? "900" : "5" }, items: lists === 1 ? [pod("a", "900")] : [] });
      } else if (url.searchParams.get("resourceVersion") === "900") {
        json(res, 504, {
          kind: "Status", code: 504, reason: "Timeout", message: "Timeout: Too large resource version: 900, current: 4",
          details: { causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }], retryAfterSeconds: 1 },
        });
      } else {
        res.writeHead(200);
        res.write(JSON.stringify({ type: "ADDED", object: pod("b", "6") }) + "\n");
      }
    });
    const w = new ResourceWatch<V1Pod>(fake.client, podsCollection("ns"), { backoff: { initialMs: 10 } });
    const seen: string[] = [];
    const ctrl = new AbortController();
    await (async () => {
      for await (const ev of w.events(ctrl.signal)) {
        seen.push(describeEvent(ev));
        if (ev.type === "ADDED") break;
      }
    })();
    expect(seen).toEqual(["relisted a", "DELETED a (synthetic)", "relisted", "ADDED b"]);
  });

  it("fails at once with a typed error when forbidden", async () => {
    fake = await startFakeApiServer((_u, _r, res) =>
      json(res, 403, { kind: "Status", code: 403, reason: "Forbidden", message: 'pods is forbidden: User "bob" cannot list resource "pods"' }),
    );
    const w = new ResourceWatch<V1Pod>(fake.client, podsCollection("ns"));
    const it = w.events()[Symbol.asyncIterator]();
    const err = await it.next().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect((err as KubernetesApiError).message).toMatch(/forbidden: the service account or user "bob" cannot list pods/);
  });

  it("gives a typed error after a long outage", async () => {
    fake = await startFakeApiServer(() => undefined);
    const url = fake.client.server;
    await fake.close();
    fake = null;
    const { KubeConfig } = await import("@kubernetes/client-node");
    const { KubeClient } = await import("../../../src/kube/client.js");
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: url, skipTLSVerify: true }], users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x",
    });
    const w = new ResourceWatch<V1Pod>(new KubeClient({ kubeConfig: kc, namespace: "ns" }), podsCollection("ns"), {
      maxOutageMs: 300,
      backoff: { initialMs: 20, maxMs: 50 },
    });
    const started = Date.now();
    const err = await w.events()[Symbol.asyncIterator]().next().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(KubernetesApiError);
    expect((err as Error).message).toMatch(/could not be reached for \d+ s/);
    expect(Date.now() - started).toBeLessThan(10_000); // gave up after maxOutageMs, not the 60 s default
  });
});

function describeEvent(ev: WatchEvent<V1Pod>): string {
  if (ev.type === "relisted") return ["relisted", ...ev.objects.map((o) => o.metadata?.name)].join(" ");
  const parts = [ev.type, ev.object.metadata?.name];
  if (ev.type === "MODIFIED") parts.push(ev.object.status?.phase);
  if (ev.synthetic) parts.push("(synthetic)");
  return parts.join(" ");
}

function fakeWatch(events: WatchEvent<V1Pod>[], hang = false): Watchable<V1Pod> {
  return {
    async *events(signal?: AbortSignal) {
      for (const e of events) yield e;
      if (hang) {
        await new Promise((_r, reject) => signal?.addEventListener("abort", () => reject(new CancelledError("x"))));
      }
    },
  };
}

describe("waitFor", () => {
  const running = (p: V1Pod) => p.status?.phase === "Running";

  it("matches from the list or from an event", async () => {
    await expect(waitFor(fakeWatch([{ type: "relisted", objects: [pod("a", "1", "Running")] }]), running)).resolves.toMatchObject({ kind: "matched" });
    const later = fakeWatch([{ type: "relisted", objects: [pod("a", "1")] }, { type: "MODIFIED", object: pod("a", "2", "Running") }]);
    await expect(waitFor(later, running)).resolves.toMatchObject({ kind: "matched", object: { metadata: { resourceVersion: "2" } } });
  });

  it("turns DELETED (also a synthetic one) and an absent object into a deleted outcome", async () => {
    const del = fakeWatch([{ type: "relisted", objects: [pod("a", "1")] }, { type: "DELETED", object: pod("a", "2"), synthetic: true }]);
    await expect(waitFor(del, running)).resolves.toMatchObject({ kind: "deleted", object: { metadata: { name: "a" } } });
    const absent = fakeWatch([{ type: "relisted", objects: [pod("b", "1")] }]);
    await expect(waitFor(absent, running, { name: "a", absentIsDeleted: true })).resolves.toEqual({ kind: "deleted", object: null });
  });

  it("ignores other objects when a name is given", async () => {
    const w = fakeWatch([
      { type: "relisted", objects: [] },
      { type: "DELETED", object: pod("other", "2") },
      { type: "ADDED", object: pod("a", "3", "Running") },
    ]);
    await expect(waitFor(w, running, { name: "a" })).resolves.toMatchObject({ kind: "matched" });
  });

  it("times out and cancels with typed errors", async () => {
    const w = fakeWatch([{ type: "relisted", objects: [pod("a", "1")] }], true);
    await expect(waitFor(w, running, { timeoutMs: 50, description: "pod a to run" })).rejects.toThrow(DeadlineExceededError);
    const c = new AbortController();
    const p = waitFor(w, running, { signal: c.signal });
    setTimeout(() => c.abort(), 20);
    await expect(p).rejects.toBeInstanceOf(CancelledError);
  });
});
