import { describe, expect, it } from "vitest";
import { parseLinkNext, parseWwwAuthenticate } from "../../../src/registry/headers.js";

describe("parseWwwAuthenticate", () => {
  it.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      [{ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/busybox:pull" } }],
    ],
    ['Basic realm="Registry Realm"', [{ scheme: "basic", params: { realm: "Registry Realm" } }]],
    ["basic realm=simple", [{ scheme: "basic", params: { realm: "simple" } }]],
    [
      'Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:a/b:pull", error="insufficient_scope"',
      [{ scheme: "bearer", params: { realm: "https://ghcr.io/token", service: "ghcr.io", scope: "repository:a/b:pull", error: "insufficient_scope" } }],
    ],
    [
      'Bearer realm="https://t/x",scope="repository:a:pull,push", Basic realm="r"',
      [
        { scheme: "bearer", params: { realm: "https://t/x", scope: "repository:a:pull,push" } },
        { scheme: "basic", params: { realm: "r" } },
      ],
    ],
    ['Basic realm="quote \\" inside"', [{ scheme: "basic", params: { realm: 'quote " inside' } }]],
    ["Negotiate abc==", [{ scheme: "negotiate", params: {}, token68: "abc==" }]],
    ["Basic", [{ scheme: "basic", params: {} }]],
    ['Bearer REALM="x"', [{ scheme: "bearer", params: { realm: "x" } }]],
    ["", []],
  ])("%s", (header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected);
  });

  it("does not throw on garbage", () => {
    expect(() => parseWwwAuthenticate('=,,"unterminated Bearer realm="x')).not.toThrow();
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([{ scheme: "bearer", params: {} }]);
  });
});

describe("parseLinkNext", () => {
  const base = "http://10.0.0.1:5000/v2/_catalog?n=2";
  it.each([
    ['</v2/_catalog?last=b&n=2>; rel="next"', "http://10.0.0.1:5000/v2/_catalog?last=b&n=2"],
    ["</v2/_catalog?last=b&n=2>; rel=next", "http://10.0.0.1:5000/v2/_catalog?last=b&n=2"],
    ['<https://other.example/v2/x/tags/list?last=1>; rel="next"', "https://other.example/v2/x/tags/list?last=1"],
    ['</a>; rel="prev", </b>; rel="next"', "http://10.0.0.1:5000/b"],
    ['</a>; rel="prev next"', "http://10.0.0.1:5000/a"],
    ['</a>; rel="prev"', null],
    ["", null],
    [null, null],
  ])("%s", (header, expected) => {
    expect(parseLinkNext(header, base)).toBe(expected);
  });
});
