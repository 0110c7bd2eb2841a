// Port-forward on the real cluster: a busybox httpd answers at 127.0.0.1 through our forwarder.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../../src/kube/client.js";
import { forwardPorts, type PortForward } from "../../../src/kube/port-forward.js";
import { createPod, deleteNamespace, namespaceClient, testPod, waitStarted } from "./helpers.js";
import { getWithRetry } from "../../support/http.js";

describe("forwardPorts (e2e)", () => {
  let client: KubeClient;
  let fwd: PortForward | undefined;
  const warnings: string[] = [];
  beforeAll(async () => {
    client = await namespaceClient("kce-e2e-pf");
  });
  afterAll(async () => {
    await fwd?.close();
    await deleteNamespace(client);
  });

  it("answers at 127.0.0.1 on a free port, for many connections, and closes", async () => {
    const body = "x".repeat(200_000);
    await createPod(
      client,
      testPod("web", ["sh", "-c", `mkdir -p /www && printf 'hello from the pod\\n' > /www/index.html && head -c 200000 /dev/zero | tr '\\0' x > /www/big.txt && exec httpd -f -p 8080 -h /www`]),
    );
    await waitStarted(client, "web");
    fwd = await forwardPorts(client, { pod: "web", ports: [{ remotePort: 8080, localPort: 0 }], logger: { warn: (m) => warnings.push(m) } });
    const [bound] = fwd.ports;
    expect(bound).toMatchObject({ remotePort: 8080, localAddress: "127.0.0.1" });
    expect(bound!.localPort).toBeGreaterThan(0);
    const base = `http://127.0.0.1:${bound!.localPort}`;
    expect(await getWithRetry(`${base}/index.html`)).toBe("hello from the pod\n");
    const many = await Promise.all(Array.from({ length: 8 }, () => fetch(`${base}/big.txt`).then((r) => r.text())));
    expect(many.every((t) => t === body)).toBe(true);
    await fwd.close();
    await expect(fetch(`${base}/index.html`)).rejects.toThrow();
    fwd = undefined;
    console.log(`port-forward warnings: ${warnings.length === 0 ? "none" : warnings.join(" | ")}`);
  });
});
