import { describe, expect, it } from "vitest";
import { closeFrame, decodeFrame, encodeFrame, parseExecStatus, PortPrefixStripper, supportsHalfClose } from "../../../src/kube/channel.js";

describe("channel framing", () => {
  it("prefixes the channel byte and splits it off again", () => {
    const f = encodeFrame(0, Buffer.from("hi"));
    expect([...f]).toEqual([0, 104, 105]);
    expect(decodeFrame(Buffer.from([2, 65]))).toEqual({ channel: 2, data: Buffer.from("A") });
    expect(decodeFrame(Buffer.alloc(0))).toBeNull();
  });

  it("closes stdin with [255, 0] on v5 only", () => {
    expect([...closeFrame()]).toEqual([255, 0]);
    expect(supportsHalfClose("v5.channel.k8s.io")).toBe(true);
    expect(supportsHalfClose("v4.channel.k8s.io")).toBe(false);
  });
});

describe("parseExecStatus (recorded channel-3 payloads)", () => {
  it("reads success", () => {
    expect(parseExecStatus('{"metadata":{},"status":"Success"}')).toMatchObject({ status: "Success", exitCode: 0 });
  });
  it("reads a non-zero exit code", () => {
    const body =
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}';
    expect(parseExecStatus(body)).toMatchObject({ status: "Failure", exitCode: 3, reason: "NonZeroExitCode" });
  });
  it("has no exit code when the command could not run", () => {
    const body =
      '{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: failed to exec in container: exec: \\"nope\\": executable file not found in $PATH","reason":"InternalError","details":{"causes":[{"message":"x"}]},"code":500}';
    expect(parseExecStatus(body)).toMatchObject({ exitCode: null, reason: "InternalError" });
  });
});

describe("PortPrefixStripper", () => {
  it("drops a first message that is just the port (LE), once per channel", () => {
    const s = new PortPrefixStripper([8080, 9090]);
    expect(s.strip(0, Buffer.from([0x90, 0x1f]))).toEqual(Buffer.alloc(0));
    expect(s.strip(1, Buffer.from([0x90, 0x1f]))).toEqual(Buffer.alloc(0));
    expect(s.strip(0, Buffer.from([0x90, 0x1f]))).toEqual(Buffer.from([0x90, 0x1f])); // data now
    expect(s.strip(2, Buffer.from([0x82, 0x23]))).toEqual(Buffer.alloc(0)); // 9090
  });

  it("passes data through when the server skipped the prefix (seen with containerd 1.6)", () => {
    const s = new PortPrefixStripper([8080]);
    expect(s.strip(0, Buffer.from("HTTP/1.1 200 OK"))).toEqual(Buffer.from("HTTP/1.1 200 OK"));
    expect(s.strip(1, Buffer.from([1, 2]))).toEqual(Buffer.from([1, 2]));
  });
});
