import { describe, expect, it } from "vitest";
import { HttpStatusError, isTransient, RequestTimeoutError, toKubernetesApiError } from "../../../src/kube/api-errors.js";
import { CancelledError, KubernetesApiError } from "../../../src/errors.js";

const ctx = { verb: "create", resource: "pods", namespace: "team-a", server: "https://10.0.0.5:6443" };

// Bodies as the API server sends them (recorded from kube-apiserver 1.33).
const forbidden = {
  kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure",
  message: 'pods is forbidden: User "system:serviceaccount:team-a:builder" cannot create resource "pods" in API group "" in the namespace "team-a"',
  reason: "Forbidden", details: { kind: "pods" }, code: 403,
};
const nsMissing = {
  kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: 'namespaces "team-a" not found',
  reason: "NotFound", details: { name: "team-a", kind: "namespaces" }, code: 404,
};
const quota = {
  kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure",
  message: 'pods "b-1" is forbidden: exceeded quota: tiny, requested: pods=1, used: pods=1, limited: pods=1',
  reason: "Forbidden", details: { name: "b-1", kind: "pods" }, code: 403,
};

function mapped(err: unknown, c = ctx): KubernetesApiError {
  const e = toKubernetesApiError(err, c);
  expect(e).toBeInstanceOf(KubernetesApiError);
  return e as KubernetesApiError;
}

describe("toKubernetesApiError", () => {
  it("names the subject, verb and resource of a 403 and points at the RBAC docs", () => {
    // client-node's ApiException shape: { code, body }
    const e = mapped(Object.assign(new Error("HTTP-Code: 403"), { code: 403, body: forbidden }));
    expect(e.message).toMatch(/^forbidden: the service account or user "system:serviceaccount:team-a:builder" cannot create pods in namespace "team-a"; see README "RBAC"/);
    expect(e).toMatchObject({ verb: "create", resource: "pods", statusCode: 403, reason: "Forbidden" });
  });

  it("says the namespace does not exist", () => {
    const e = mapped(new HttpStatusError(404, JSON.stringify(nsMissing)));
    expect(e.message).toBe('namespace "team-a" does not exist; create it or choose another namespace');
    expect(e.statusCode).toBe(404);
  });

  it("recognises an exceeded quota", () => {
    const e = mapped(Object.assign(new Error("x"), { code: 403, body: quota }));
    expect(e.message).toMatch(/^resource quota exceeded: cannot create pods in namespace "team-a": .*exceeded quota: tiny/);
  });

  it("reports an unreachable server with its URL", () => {
    const refused = Object.assign(new Error("request to https://10.0.0.5:6443/api failed"), {
      type: "system", cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
    });
    const e = mapped(refused);
    expect(e.message).toMatch(/^cannot reach the Kubernetes API server at https:\/\/10\.0\.0\.5:6443 \(ECONNREFUSED\) to create pods/);
    expect(e.statusCode).toBeNull();
    expect(isTransient(e)).toBe(true);
  });

  it("reports our own deadline", () => {
    const e = mapped(new RequestTimeoutError(5000));
    expect(e.message).toMatch(/no answer to create pods within 5000 ms/);
    expect(e.reason).toBe("Timeout");
  });

  it("passes typed errors through", () => {
    const c = new CancelledError("stop");
    expect(toKubernetesApiError(c, ctx)).toBe(c);
  });

  it("classifies transient failures", () => {
    expect(isTransient(new HttpStatusError(503, ""))).toBe(true);
    expect(isTransient(new HttpStatusError(429, ""))).toBe(true);
    expect(isTransient(new HttpStatusError(403, forbidden))).toBe(false);
    expect(isTransient(mapped(new HttpStatusError(404, nsMissing)))).toBe(false);
  });

  it("keeps a plain-text body as the message", () => {
    const e = mapped(new HttpStatusError(400, "container \"x\" in pod \"p\" is waiting to start"));
    expect(e.message).toMatch(/invalid request: .*waiting to start/);
  });
});
