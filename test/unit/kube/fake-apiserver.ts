/** A scripted stand-in for the API server: each request is handed to the test's handler. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient } from "../../../src/kube/client.js";

export type Handler = (url: URL, req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface FakeApiServer {
  client: KubeClient;
  requests: URL[];
  close(): Promise<void>;
}

export async function startFakeApiServer(handler: Handler, namespace = "ns"): Promise<FakeApiServer> {
  const requests: URL[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://fake");
    requests.push(url);
    handler(url, req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const client = new KubeClient({ kubeConfig: kc, namespace, callTimeoutMs: 2000, connectTimeoutMs: 2000 });
  return {
    client,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function json(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
