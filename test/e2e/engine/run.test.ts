// The Container contract over pods, on the real local cluster: status, exit codes, logs (timestamps, since,
// streaming), stop, kill, remove, failures to start, and port forwarding.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContainerNotFoundError, InvalidInputError, type KubernetesEngine } from "../../../src/index.js";
import { withinBound } from "../../support/measurements.js";
import { baseImage, deleteNamespace, engineNamespace, expectNoLeftovers, type EngineNamespace } from "./helpers.js";
import { getWithRetry } from "../../support/http.js";

let ns: EngineNamespace;
let engine: KubernetesEngine;

beforeAll(async () => {
  ns = await engineNamespace("e2e-run");
  engine = ns.engine({ timeouts: { imagePullGraceSeconds: 5 } });
});

afterAll(async () => {
  if (ns) await expectNoLeftovers(ns.admin);
  await deleteNamespace(ns?.admin);
});

const numbered = (n: number): string => `for i in $(seq 1 ${n}); do echo line $i; done`;

describe("run", () => {
  it("a container that prints and exits 7 is exited/7 with every line", async () => {
    const container = await engine.run(baseImage(), { command: ["sh", "-c", `${numbered(50)}; exit 7`] });
    expect(["running", "exited"]).toContain(container.status);
    expect(await container.wait()).toEqual({ exitCode: 7 });
    await container.reload();
    expect(container.status).toBe("exited");
    expect(container.exitcode).toBe(7);
    const logs = await container.logs();
    expect(logs.split("\n").filter(Boolean)).toEqual(Array.from({ length: 50 }, (_, i) => `line ${i + 1}`));
    await container.remove();
  });

  it("logs with timestamps, and since a timestamp", async () => {
    const container = await engine.run(baseImage(), { command: ["sh", "-c", "echo first; sleep 2; echo second; echo third"] });
    await container.wait();
    const stamped = (await container.logs({ timestamps: true })).split("\n").filter(Boolean);
    expect(stamped).toHaveLength(3);
    for (const line of stamped) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (first|second|third)$/);
    const since = stamped[1]?.split(" ")[0] ?? "";
    const after = (await container.logs({ since })).split("\n").filter(Boolean);
    expect(after).toEqual(["second", "third"]);
    await container.remove();
  });

  it("streamLogs yields every line and ends when the container exits", async () => {
    const container = await engine.run(baseImage(), { command: ["sh", "-c", `${numbered(500)}; sleep 1; echo last`] });
    const lines: string[] = [];
    for await (const line of container.streamLogs({ timestamps: true })) lines.push(line);
    expect(lines).toHaveLength(501);
    expect(lines.every((l) => l.endsWith("\n"))).toBe(true);
    expect(lines.at(-1)).toMatch(/ last\n$/);
    await container.reload();
    expect(container.status).toBe("exited");
    await container.remove();
  });

  it("command replaces CMD as args, environment is set, user is applied", async () => {
    const container = await engine.run(baseImage(), {
      command: ["sh", "-c", 'echo "A=$A B=[$B] uid=$(id -u)"'],
      environment: ["A=1", "B="],
      user: 1234,
    });
    await container.wait();
    expect(await container.logs()).toBe("A=1 B=[] uid=1234\n");
    await container.remove();
  });

  it("stop of a sleeping container exits within the timeout", async () => {
    const container = await engine.run(baseImage(), { command: ["sleep", "3600"] });
    expect(container.status).toBe("running");
    const started = Date.now();
    await container.stop({ timeout: 2 });
    withinBound("engine/run-stop-timeout-2s", Date.now() - started, 7_000);
    expect(container.status).toBe("exited");
    expect(container.exitcode).not.toBe(0);
    await container.remove();
  });

  it("kill keeps state and logs queryable; remove is idempotent; reload after remove throws", async () => {
    const container = await engine.run(baseImage(), { command: ["sh", "-c", "echo before-kill; exec sleep 3600"] });
    for await (const line of container.streamLogs()) if (line === "before-kill\n") break;
    await container.kill();
    expect(container.status).toBe("exited");
    expect(container.exitcode).toBe(137);
    expect(await container.logs()).toContain("before-kill");
    expect((await container.wait()).exitCode).toBe(137);
    await container.reload();
    expect(container.status).toBe("exited");
    await container.remove();
    await container.remove();
    await expect(container.reload()).rejects.toBeInstanceOf(ContainerNotFoundError);
  });

  it("a non-existent image ends exited with a non-zero code and a reason, within seconds", async () => {
    const started = Date.now();
    const container = await engine.run(`${process.env.KCE_REGISTRY}/kce-e2e/does-not-exist:nope`);
    if (container.status !== "exited") await container.wait();
    withinBound("engine/run-image-missing", Date.now() - started, 20_000);
    expect(container.status).toBe("exited");
    expect(container.exitcode).not.toBe(0);
    expect(container.reason).toMatch(/ImagePull|ErrImagePull|not found/i);
    await container.remove();
  });

  it("remove: true deletes the pod once it exited, keeping its exit code and log", async () => {
    const container = await engine.run(baseImage(), { command: ["sh", "-c", "echo auto-removed; exit 4"], remove: true });
    expect(await container.wait()).toEqual({ exitCode: 4 });
    const gone = async (): Promise<boolean> => {
      const pods = await ns.admin.call("list", "pods", (o) => ns.admin.core.listNamespacedPod({ namespace: ns.namespace }, o));
      return !pods.items.some((p) => p.metadata?.name === container.id);
    };
    for (let i = 0; i < 40 && !(await gone()); i++) await new Promise((r) => setTimeout(r, 250));
    expect(await gone()).toBe(true);
    expect(await container.logs()).toBe("auto-removed\n");
    expect(container.exitcode).toBe(4);
  });

  it("rejects bad input before creating anything", async () => {
    await expect(engine.run(baseImage(), { environment: ["NOEQUALS"] })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(engine.run(baseImage(), { ports: { "53/udp": 5353 } })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(engine.run(baseImage(), { volumes: { "/tmp": { bind: "/data" } } })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(engine.run("UPPER/Case::bad")).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("forwards a container port to 127.0.0.1 while the container lives", async () => {
    const container = await engine.run(baseImage(), {
      command: ["sh", "-c", "mkdir -p /tmp/www && echo hello-from-pod > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"],
      ports: { "8080/tcp": 0 },
    });
    const bound = container.ports?.["8080/tcp"];
    expect(bound?.host).toBe("127.0.0.1");
    expect(bound?.port).toBeGreaterThan(0);
    const body = await getWithRetry(`http://127.0.0.1:${bound?.port}/index.html`);
    expect(body).toBe("hello-from-pod\n");
    await container.kill();
    await container.remove();
  });
});
