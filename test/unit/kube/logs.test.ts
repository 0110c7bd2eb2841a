import { afterEach, describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { followLogs, formatLogLine, readLogs } from "../../../src/kube/logs.js";
import { ContainerNotFoundError } from "../../../src/errors.js";
import { json, startFakeApiServer, type FakeApiServer } from "./fake-apiserver.js";

const T = (s: string) => `2025-01-01T00:00:0${s}Z`;
const podIn = (state: "waiting" | "running" | "terminated"): V1Pod => ({
  metadata: { name: "p", namespace: "ns", uid: "u1", resourceVersion: "1" },
  status: {
    containerStatuses: [
      {
        name: "main", image: "x", imageID: "", ready: false, restartCount: 0,
        state: state === "waiting" ? { waiting: { reason: "ContainerCreating" } }
          : state === "running" ? { running: {} } : { terminated: { exitCode: 0 } },
      },
    ],
  },
});

let fake: FakeApiServer | null = null;
afterEach(async () => {
  await fake?.close();
  fake = null;
});

describe("followLogs against a scripted API server", () => {
  it("waits for the start, resumes after an early end without loss or duplicates, and reads the tail", async () => {
    let follows = 0;
    let podGets = 0;
    fake = await startFakeApiServer((url, _req, res) => {
      const p = url.pathname;
      if (p === "/api/v1/namespaces/ns/pods" && url.searchParams.get("watch") !== "true") {
        json(res, 200, { metadata: { resourceVersion: "1" }, items: [podIn("waiting")] });
      } else if (p === "/api/v1/namespaces/ns/pods") {
        res.writeHead(200);
        res.write(JSON.stringify({ type: "MODIFIED", object: { ...podIn("running"), metadata: { ...podIn("running").metadata, resourceVersion: "2" } } }) + "\n");
      } else if (p === "/api/v1/namespaces/ns/pods/p/log" && url.searchParams.get("follow") === "true") {
        follows++;
        res.writeHead(200);
        if (follows === 1) {
          // rotation: the stream ends in the middle of line 3
          res.end(`${T("1.1")} one\n${T("1.2")} two\n${T("1.2")} two\n${T("1.3")} thr`);
        } else {
          expect(url.searchParams.get("sinceTime")).toBe(T("1.2"));
          // resumed from the whole second: repeats
          res.end(`${T("1.1")} one\n${T("1.2")} two\n${T("1.2")} two\n${T("1.3")} three\n${T("2")} four\n`);
        }
      } else if (p === "/api/v1/namespaces/ns/pods/p/log") {
        res.writeHead(200);
        res.end(`${T("2")} four\n${T("2.5")} five (raced the end of the follow)`);
      } else if (p === "/api/v1/namespaces/ns/pods/p") {
        podGets++;
        json(res, 200, podIn(podGets === 1 ? "running" : "terminated"));
      } else {
        json(res, 404, { kind: "Status", code: 404, message: `unexpected ${p}` });
      }
    });
    const lines: string[] = [];
    for await (const l of followLogs(fake.client, { pod: "p", container: "main", backoff: { initialMs: 5 } })) {
      lines.push(formatLogLine(l, true));
    }
    expect(lines).toEqual([
      `${T("1.1")} one\n`, `${T("1.2")} two\n`, `${T("1.2")} two\n`, `${T("1.3")} three\n`, `${T("2")} four\n`,
      `${T("2.5")} five (raced the end of the follow)\n`,
    ]);
    const logReqs = fake.requests.filter((u) => u.pathname.endsWith("/log"));
    expect(logReqs.every((u) => u.searchParams.get("timestamps") === "true" && u.searchParams.get("container") === "main")).toBe(true);
    expect(logReqs.at(-1)?.searchParams.get("sinceTime")).toBe(T("2"));
  });

  it("throws ContainerNotFoundError when the pod is gone before the start", async () => {
    fake = await startFakeApiServer((_url, _req, res) => json(res, 200, { metadata: { resourceVersion: "1" }, items: [] }));
    const it = followLogs(fake.client, { pod: "p", container: "main" })[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toBeInstanceOf(ContainerNotFoundError);
  });
});

describe("readLogs", () => {
  it("honours sinceTime to the nanosecond although the server truncates it", async () => {
    fake = await startFakeApiServer((_url, _req, res) => {
      res.writeHead(200);
      res.end(`${T("1.1")} old\n${T("1.5")} new\n${T("3")} last`);
    });
    const lines = await readLogs(fake.client, { pod: "p", container: "main", sinceTime: T("1.5") });
    expect(lines.map((l) => l.text)).toEqual(["new", "last"]);
    expect(formatLogLine(lines[0]!, false)).toBe("new\n");
  });

  it("drops the kubelet's error text written into a log response (no timestamp), keeping the container's lines", async () => {
    fake = await startFakeApiServer((_url, _req, res) => {
      res.writeHead(200);
      res.end(`${T("1")} ignoring-sigterm\nfailed to try resolving symlinks in path "/var/log/pods/x/main/0.log": lstat /var/log/pods/x: no such file or directory`);
    });
    const lines = await readLogs(fake.client, { pod: "p", container: "main" });
    expect(lines.map((l) => formatLogLine(l, false)).join("")).toBe("ignoring-sigterm\n");
  });
});
