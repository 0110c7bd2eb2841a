import { describe, expect, it } from "vitest";
import type { PortBinding } from "../../../src/contract.js";
import { InvalidInputError } from "../../../src/errors.js";
import {
  parseContainerPortKey,
  parsePortBindings,
  parsePublishFlag,
  publishFlagsToPorts,
  unforwardableExposedPorts,
} from "../../../src/pods/ports.js";

const tcp = (containerPort: number, localAddress: string, localPort: number) => ({
  key: `${containerPort}/tcp`,
  containerPort,
  protocol: "TCP",
  localAddress,
  localPort,
});

describe("parsePortBindings: accepted shapes", () => {
  it.each<[string, Record<string, PortBinding>, ReturnType<typeof tcp>[]]>([
    ["key with /tcp, string port", { "8888/tcp": "8888" }, [tcp(8888, "127.0.0.1", 8888)]],
    ["bare key, number port", { "8888": 9999 }, [tcp(8888, "127.0.0.1", 9999)]],
    ["upper-case protocol", { "80/TCP": 8080 }, [tcp(80, "127.0.0.1", 8080)]],
    ["null = any free port", { "8888/tcp": null }, [tcp(8888, "127.0.0.1", 0)]],
    ["local port 0 = any free port (as in Docker)", { "8888/tcp": 0 }, [tcp(8888, "127.0.0.1", 0)]],
    ["[address, port]", { "8888/tcp": ["0.0.0.0", "8888"] }, [tcp(8888, "0.0.0.0", 8888)]],
    ["[IPv6, port]", { "8888/tcp": ["::1", 8888] }, [tcp(8888, "::1", 8888)]],
    ["[bracketed IPv6, port]", { "8888/tcp": ["[::1]", 8888] }, [tcp(8888, "::1", 8888)]],
    ["[localhost, port]", { "8888/tcp": ["localhost", 8888] }, [tcp(8888, "localhost", 8888)]],
    ["whitespace around numbers", { " 8888 / tcp ": " 8888 " }, [tcp(8888, "127.0.0.1", 8888)]],
    ["edges of the range", { "1": 65535, "65535/tcp": 1 }, [tcp(1, "127.0.0.1", 65535), tcp(65535, "127.0.0.1", 1)]],
    ["one local port on two addresses", { "80": ["127.0.0.1", 8080], "81": ["192.0.2.1", 8080] }, [tcp(80, "127.0.0.1", 8080), tcp(81, "192.0.2.1", 8080)]],
    ["two ports on any free local port", { "80": null, "81": null }, [tcp(80, "127.0.0.1", 0), tcp(81, "127.0.0.1", 0)]],
  ])("%s", (_, ports, expected) => {
    expect(parsePortBindings(ports)).toEqual(expected);
  });

  it("returns nothing for no ports", () => {
    expect(parsePortBindings(undefined)).toEqual([]);
    expect(parsePortBindings(null)).toEqual([]);
    expect(parsePortBindings({})).toEqual([]);
  });

  it("honours a configured default address", () => {
    expect(parsePortBindings({ "8888": 8888 }, { defaultAddress: "0.0.0.0" })).toEqual([tcp(8888, "0.0.0.0", 8888)]);
  });

  it("publishes every exposed TCP port, after the named ones, skipping UDP", () => {
    const exposed = { "9000/tcp": {}, "8888/tcp": {}, "53/udp": {}, "7000": {} };
    expect(parsePortBindings({ "8888/tcp": 8888 }, { publishAllPorts: true, exposedPorts: exposed })).toEqual([
      tcp(8888, "127.0.0.1", 8888),
      tcp(7000, "127.0.0.1", 0),
      tcp(9000, "127.0.0.1", 0),
    ]);
    expect(parsePortBindings({}, { publishAllPorts: true, exposedPorts: ["8888/tcp"] })).toEqual([tcp(8888, "127.0.0.1", 0)]);
    expect(unforwardableExposedPorts(exposed)).toEqual(["53/udp"]);
    expect(parsePortBindings({}, { publishAllPorts: false, exposedPorts: exposed })).toEqual([]);
    expect(parsePortBindings({}, { publishAllPorts: true })).toEqual([]);
  });
});

describe("parsePortBindings: rejected shapes", () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ["UDP", { "53/udp": 53 }, /cannot forward UDP through the Kubernetes API/],
    ["SCTP", { "53/sctp": 53 }, /cannot forward SCTP/],
    ["unknown protocol", { "53/xyz": 53 }, /unknown protocol/],
    ["container port 0", { "0/tcp": 8888 }, /outside 1–65535/],
    ["container port 70000", { "70000": 8888 }, /outside 1–65535/],
    ["container port abc", { abc: 8888 }, /not a port number/],
    ["container port range", { "8000-8010/tcp": null }, /ranges are not supported/],
    ["empty key", { "": 8888 }, /expected "<port>"/],
    ["local port 70000", { "8888": 70000 }, /outside 0–65535/],
    ["local port -1", { "8888": -1 }, /not a port number/],
    ["local port abc", { "8888": "abc" }, /not a port number/],
    ["local port 1.5", { "8888": 1.5 }, /not a port number/],
    ["empty local port string", { "8888": "" }, /not a port number/],
    ["bad address", { "8888": ["not-an-ip", 8888] }, /not an IP address/],
    ["address not a string", { "8888": [8888, 8888] }, /must be a string/],
    ["object value", { "8888": { port: 1 } }, /expected a local port/],
    ["three-element tuple", { "8888": ["127.0.0.1", 1, 2] }, /expected a local port/],
    ["container port twice", { "8888": 1, "8888/tcp": 2 }, /container port 8888 is bound twice \("8888" and "8888\/tcp"\)/],
    ["local port twice", { "80": 8080, "81": 8080 }, /local port 8080 is bound to both/],
    ["local port twice via a wildcard", { "80": ["0.0.0.0", 8080], "81": ["127.0.0.1", 8080] }, /local port 8080/],
  ])("%s", (_, ports, message) => {
    expect(() => parsePortBindings(ports as Record<string, PortBinding>)).toThrow(InvalidInputError);
    expect(() => parsePortBindings(ports as Record<string, PortBinding>)).toThrow(message);
  });

  it("rejects a UDP port named explicitly even with publishAllPorts", () => {
    expect(() => parsePortBindings({ "53/udp": null }, { publishAllPorts: true })).toThrow(/UDP/);
  });
});

describe("parseContainerPortKey", () => {
  it("returns the number", () => {
    expect(parseContainerPortKey("8888/tcp")).toBe(8888);
    expect(parseContainerPortKey("22")).toBe(22);
  });
});

describe("parsePublishFlag (-p)", () => {
  it.each<[string, string, PortBinding]>([
    ["8888", "8888/tcp", null],
    ["8888/tcp", "8888/tcp", null],
    ["9999:8888", "8888/tcp", 9999],
    [":8888", "8888/tcp", null],
    ["127.0.0.1:9999:8888", "8888/tcp", ["127.0.0.1", 9999]],
    ["0.0.0.0::8888", "8888/tcp", ["0.0.0.0", 0]],
    ["[::1]:9999:8888/tcp", "8888/tcp", ["::1", 9999]],
    ["[::]::8888", "8888/tcp", ["::", 0]],
  ])("%s", (flag, key, binding) => {
    expect(parsePublishFlag(flag)).toEqual({ key, binding });
  });

  it.each<[string, RegExp]>([
    ["53:53/udp", /cannot forward UDP/],
    ["8000-8010:8000-8010", /ranges are not supported/],
    ["abc", /not a port number/],
    ["9999:0", /outside 1–65535/],
    ["70000:8888", /outside 0–65535/],
    ["host.example:9999:8888", /not an IP address/],
    ["::1:9999:8888", /put IPv6 addresses in brackets/],
    ["[::1]:1:2:3", /put IPv6 addresses in brackets/],
    ["", /expected "<port>"/],
  ])("rejects %j", (flag, message) => {
    expect(() => parsePublishFlag(flag)).toThrow(InvalidInputError);
    expect(() => parsePublishFlag(flag)).toThrow(message);
  });

  it("collects flags into the contract's ports, which parsePortBindings accepts", () => {
    const ports = publishFlagsToPorts(["8888", "127.0.0.1:9000:9000", "[::1]::7000"]);
    expect(ports).toEqual({ "8888/tcp": null, "9000/tcp": ["127.0.0.1", 9000], "7000/tcp": ["::1", 0] });
    expect(parsePortBindings(ports)).toEqual([tcp(8888, "127.0.0.1", 0), tcp(9000, "127.0.0.1", 9000), tcp(7000, "::1", 0)]);
  });

  it("rejects the same container port twice", () => {
    expect(() => publishFlagsToPorts(["8888", "9999:8888/tcp"])).toThrow(/8888\/tcp is already published/);
  });
});
