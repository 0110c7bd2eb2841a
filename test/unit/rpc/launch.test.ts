// The first line a client of a warm `kce rpc --listen` sends: how it would have started `kce rpc`.
import { describe, expect, it } from "vitest";
import { parseLaunch, RpcError } from "../../../src/rpc/protocol.js";

describe("parseLaunch", () => {
  it("takes a kce rpc command line and an environment", () => {
    expect(parseLaunch('{"argv": ["rpc", "--namespace", "ns"], "env": {"KUBECONFIG": "/k"}}')).toEqual({
      argv: ["rpc", "--namespace", "ns"],
      env: { KUBECONFIG: "/k" },
    });
  });

  it.each([
    ["not JSON", "must be JSON"],
    ['{"env": {}}', '"argv" must be a list of strings'],
    ['{"argv": ["rpc", 1], "env": {}}', '"argv" must be a list of strings'],
    ['{"argv": ["build", "."], "env": {}}', "must be a `kce rpc` command line"],
    ['{"argv": ["rpc", "--listen", "/s"], "env": {}}', "without --listen"],
    ['{"argv": ["rpc", "--listen=/s"], "env": {}}', "without --listen"],
    ['{"argv": ["rpc"]}', '"env" must map names to strings'],
    ['{"argv": ["rpc"], "env": {"A": 1}}', '"env" must map names to strings'],
    ['{"argv": ["rpc"], "env": ["A"]}', '"env" must map names to strings'],
    ["null", '"argv" must be a list of strings'],
  ])("refuses %s", (line, message) => {
    expect(() => parseLaunch(line)).toThrow(RpcError);
    expect(() => parseLaunch(line)).toThrow(message);
  });
});
