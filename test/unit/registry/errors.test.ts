import { describe, expect, it } from "vitest";
import { ContainerEngineError } from "../../../src/errors.js";
import { RegistryError, parseRegistryErrorBody, registryFailure } from "../../../src/registry/errors.js";
import { parseTokenBody } from "../../../src/registry/auth.js";

describe("parseRegistryErrorBody", () => {
  it.each([
    ['{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}', { code: "MANIFEST_UNKNOWN", message: "manifest unknown" }],
    ['{"errors":[{"code":"DENIED"}]}', { code: "DENIED", message: "" }],
    ['{"errors":[]}', null],
    ["<html>502</html>", null],
    ["", null],
    ["null", null],
  ])("%s", (body, expected) => expect(parseRegistryErrorBody(body)).toEqual(expected));
});

describe("registryFailure", () => {
  const base = { host: "r.io", body: "", action: "read the manifest of r.io/a:1" };
  it("is a typed ContainerEngineError with status and code", () => {
    const error = registryFailure({ ...base, hasCredentials: false, statusCode: 500, body: '{"errors":[{"code":"UNKNOWN","message":"boom"}]}' });
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toBeInstanceOf(ContainerEngineError);
    expect(error).toMatchObject({ host: "r.io", statusCode: 500, code: "UNKNOWN", name: "RegistryError" });
    expect(error.message).toBe("registry r.io answered 500 when asked to read the manifest of r.io/a:1: UNKNOWN boom");
  });
  it.each([
    [403, false, /denied: registry r\.io refuses anonymous access.*configure credentials/],
    [403, true, /denied: the credentials for host r\.io may not read/],
    [429, false, /rate-limiting/],
    [405, false, /does not allow this/],
  ])("%i (credentials: %s)", (statusCode, hasCredentials, message) => {
    expect(registryFailure({ ...base, statusCode, hasCredentials }).message).toMatch(message);
  });
  it("hints at enabling deletion", () => {
    const error = registryFailure({ ...base, action: "delete r.io/a:1", statusCode: 405, hasCredentials: false });
    expect(error.code).toBe("UNSUPPORTED");
    expect(error.message).toContain("REGISTRY_STORAGE_DELETE_ENABLED");
  });
});

describe("parseTokenBody", () => {
  it.each([
    ['{"token":"t","expires_in":300}', { token: "t", expiresIn: 300 }],
    ['{"access_token":"a"}', { token: "a", expiresIn: null }],
    ['{"token":"","access_token":"a","expires_in":-1}', { token: "a", expiresIn: null }],
    ["{}", null],
    ["nope", null],
  ])("%s", (body, expected) => expect(parseTokenBody(body)).toEqual(expected));
});
