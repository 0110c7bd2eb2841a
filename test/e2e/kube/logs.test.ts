// The log follower on the real cluster: every line exactly once, from a fast printer and an instant exit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { followLogs, readLogs } from "../../../src/kube/logs.js";
import { createPod, deleteNamespace, namespaceClient, testPod, waitDone } from "./helpers.js";

const N = 2000;

async function collect(client: KubeClient, pod: string): Promise<string[]> {
  const out: string[] = [];
  for await (const line of followLogs(client, { pod, container: "main", startTimeoutMs: 90_000 })) out.push(line.text);
  return out;
}

describe("followLogs (e2e)", () => {
  let client: KubeClient;
  beforeAll(async () => {
    client = await namespaceClient("kce-e2e-logs");
  });
  afterAll(async () => {
    await deleteNamespace(client);
  });

  it(`gets all ${N} lines of a fast printer, none lost at start or end, no duplicates`, async () => {
    const script = `i=1; while [ $i -le ${N} ]; do echo "line $i"; i=$((i+1)); done`;
    // Follow right after the create, before the container started: the follower waits for it by watch.
    await createPod(client, testPod("printer", ["sh", "-c", script]));
    const following = collect(client, "printer");
    const t0 = Date.now();
    const lines = await following;
    console.log(`followed ${lines.length} lines in ${Date.now() - t0} ms`);
    expect(lines).toEqual(Array.from({ length: N }, (_, i) => `line ${i + 1}`));
  });

  it("gets the output of a container that exits immediately", async () => {
    await createPod(client, testPod("instant", ["sh", "-c", "echo only-line; echo last-without-newline | tr -d '\\n'"]));
    const lines = await collect(client, "instant");
    expect(lines).toEqual(["only-line", "last-without-newline"]);
  });

  it("follows a pod that already finished, and reads once with sinceTime", async () => {
    await createPod(client, testPod("finished", ["sh", "-c", "echo a; sleep 1.2; echo b; echo c"]));
    await waitDone(client, "finished");
    expect(await collect(client, "finished")).toEqual(["a", "b", "c"]);
    const all = await readLogs(client, { pod: "finished", container: "main" });
    expect(all.map((l) => l.text)).toEqual(["a", "b", "c"]);
    const since = await readLogs(client, { pod: "finished", container: "main", sinceTime: all[1]!.timestamp });
    expect(since.map((l) => l.text)).toEqual(["b", "c"]);
  });
});
