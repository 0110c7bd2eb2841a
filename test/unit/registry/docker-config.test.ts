import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { normalizeRegistryHost, parseDockerConfigJson } from "../../../src/registry/docker-config.js";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

describe("parseDockerConfigJson", () => {
  it("reads auths[host].auth", () => {
    const json = JSON.stringify({ auths: { "10.0.0.1:5001": { auth: b64("user:pa:ss") } } });
    expect(parseDockerConfigJson(json, "10.0.0.1:5001")).toEqual({ username: "user", password: "pa:ss" });
  });
  it("reads username/password and prefers them over auth", () => {
    const doc = { auths: { "ghcr.io": { username: "u", password: "p", auth: b64("x:y") } } };
    expect(parseDockerConfigJson(doc, "ghcr.io")).toEqual({ username: "u", password: "p" });
  });
  it("matches URL keys and Docker Hub aliases", () => {
    const json = JSON.stringify({ auths: { "https://index.docker.io/v1/": { auth: b64("hub:secret") } } });
    expect(parseDockerConfigJson(json, "docker.io")).toEqual({ username: "hub", password: "secret" });
    expect(parseDockerConfigJson(json, "registry-1.docker.io")).toEqual({ username: "hub", password: "secret" });
  });
  it("accepts the legacy .dockercfg form", () => {
    expect(parseDockerConfigJson({ "quay.io": { auth: b64("a:b") } }, "quay.io")).toEqual({ username: "a", password: "b" });
  });
  it("returns null when the host is absent or the entry is empty", () => {
    expect(parseDockerConfigJson({ auths: { "a.io": { auth: b64("a:b") } } }, "b.io")).toBeNull();
    expect(parseDockerConfigJson({ auths: { "a.io": {} } }, "a.io")).toBeNull();
    expect(parseDockerConfigJson({ auths: {} }, "a.io")).toBeNull();
  });
  it("throws InvalidInputError without leaking secrets", () => {
    expect(() => parseDockerConfigJson("{not json", "a.io")).toThrow(InvalidInputError);
    expect(() => parseDockerConfigJson("[]", "a.io")).toThrow(InvalidInputError);
    const bad = { auths: { "a.io": { auth: b64("nocolonsecret") } } };
    expect(() => parseDockerConfigJson(bad, "a.io")).toThrow(InvalidInputError);
    try {
      parseDockerConfigJson(bad, "a.io");
    } catch (error) {
      expect(String(error)).not.toContain("nocolonsecret");
      expect(String(error)).not.toContain(b64("nocolonsecret"));
    }
  });
});

describe("normalizeRegistryHost", () => {
  it.each([
    ["https://index.docker.io/v1/", "docker.io"],
    ["registry-1.docker.io", "docker.io"],
    ["Localhost:5000", "localhost:5000"],
    ["http://10.0.0.1:5000/path", "10.0.0.1:5000"],
    ["ghcr.io", "ghcr.io"],
  ])("%s → %s", (key, host) => expect(normalizeRegistryHost(key)).toBe(host));
});
