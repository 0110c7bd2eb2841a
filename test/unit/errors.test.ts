// The public errors as JavaScript callers (and the seed's plain constructor) use them.
import { describe, expect, it } from "vitest";
import { BuildError, ContainerEngineError, RegistryError } from "../../src/index.js";

describe("errors", () => {
  it("BuildError(message) works without options, as the seed's constructor does", () => {
    const err = new (BuildError as unknown as new (message: string) => BuildError)("no Dockerfile");
    expect(err).toBeInstanceOf(ContainerEngineError);
    expect(err.message).toBe("no Dockerfile");
    expect(err.name).toBe("BuildError");
    expect(err.reason).toBe("failed");
    expect(err.exitCode).toBeNull();
    expect(err.logTail).toEqual([]);
  });

  it("keeps what it is given", () => {
    const cause = new Error("underlying");
    const err = new BuildError("x", { reason: "oom", exitCode: 137, logTail: ["a"], cause });
    expect([err.reason, err.exitCode, err.logTail, err.cause]).toEqual(["oom", 137, ["a"], cause]);
  });

  it("RegistryError is exported and is a ContainerEngineError", () => {
    const err = new RegistryError("denied", { host: "r:5000", statusCode: 403, code: "DENIED" });
    expect(err).toBeInstanceOf(ContainerEngineError);
    expect([err.name, err.host, err.statusCode, err.code]).toEqual(["RegistryError", "r:5000", 403, "DENIED"]);
  });
});
