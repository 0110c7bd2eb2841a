import { describe, expect, it } from "vitest";
import { InvalidInputError } from "../../../src/errors.js";
import { RepositoryRefusedError, UrlChecker, type Lookup, type UrlPolicy } from "../../../src/service/url-policy.js";

const PUBLIC = "203.0.113.10"; // TEST-NET-3: not in any refused range

const OPEN: UrlPolicy = { allowedSchemes: ["https", "http"], allowedHosts: ["*"], allowedCidrs: [], blockedCidrs: [], blockedEndpoints: [] };

/** A lookup from a table; unknown names fail like getaddrinfo. Records the names asked for. */
function fakeLookup(table: Record<string, string[]> = {}, fallback: string[] | null = [PUBLIC]): Lookup & { calls: string[] } {
  const calls: string[] = [];
  const lookup = async (host: string): Promise<string[]> => {
    calls.push(host);
    const answer = table[host] ?? fallback;
    if (answer === null) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
    return answer;
  };
  return Object.assign(lookup, { calls });
}

function checker(policy: Partial<UrlPolicy> = {}, lookup: Lookup = fakeLookup()): UrlChecker {
  return new UrlChecker({ ...OPEN, ...policy }, lookup);
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e as Error,
  );
  if (err === null) throw new Error("expected a refusal");
  expect(err).toBeInstanceOf(RepositoryRefusedError);
  expect(err).toBeInstanceOf(InvalidInputError);
  return err;
}

describe("UrlChecker: schemes and credentials", () => {
  it.each([
    ["file:///etc/passwd", "file"],
    ["ssh://github.com/user/repo", "ssh"],
    ["git://github.com/user/repo", "git"],
    ["fd::17", "fd"],
    ["ftp://example.org/repo", "ftp"],
    ["git+ssh://github.com/user/repo", "git+ssh"],
  ])("%s is refused (scheme %s)", async (url, scheme) => {
    // file, ssh and git are refused even when listed
    const c = checker({ allowedSchemes: ["https", "http", "file", "ssh", "git", "fd"] });
    const err = await refusal(c.check(url));
    if (["file", "ssh", "git", "fd"].includes(scheme)) {
      expect(err.message).toBe(`repository URLs with scheme ${scheme}:// are not allowed (allowed: https, http, file, ssh, git, fd)`);
    } else {
      expect(err.message).toMatch(new RegExp(`^repository URLs with scheme ${scheme.replace("+", "\\+")}:// are not allowed`));
    }
  });

  it.each([
    [["https"], "http://example.org/repo", false],
    [["https"], "https://example.org/repo", true],
    [["HTTPS"], "https://example.org/repo", true],
    [["https"], "HTTPS://example.org/repo", true],
    [[], "https://example.org/repo", false],
  ])("allowedSchemes %j: %s accepted → %s", async (allowedSchemes, url, accepted) => {
    const result = checker({ allowedSchemes }).check(url);
    if (accepted) await expect(result).resolves.toMatchObject({ host: "example.org" });
    else await refusal(result);
  });

  it.each(["https://user@github.com/a/b", "https://:secret@github.com/a/b", "https://user:secret@github.com/a/b", "https://x-access-token:ghp_abc@github.com/a/b"])(
    "%s is refused: credentials",
    async (url) => {
      const err = await refusal(checker().check(url));
      expect(err.message).toBe("repository URLs with credentials in them are not accepted");
      expect(err.message).not.toContain("secret");
    },
  );

  it.each(["github.com/user/repo", "", "https://", "http://[::1/"])("%j is not a URL", async (url) => {
    const err = await refusal(checker().check(url));
    expect(err.message).toBe(`${JSON.stringify(url)} is not a URL`);
  });
});

describe("UrlChecker: allowedHosts", () => {
  it.each<[string[], string, boolean]>([
    [["github.com"], "https://github.com/a/b", true],
    [["github.com"], "https://GitHub.COM/a/b", true],
    [["GitHub.com"], "https://github.com/a/b", true],
    [[" github.com "], "https://github.com/a/b", true],
    [["github.com"], "https://github.com:8443/a/b", true], // no port in the pattern: any port
    [["github.com"], "https://gist.github.com/a/b", false],
    [["github.com"], "https://github.com.example.org/a/b", false],
    [["github.com"], "https://evilgithub.com/a/b", false],
    [["github.com:443"], "https://github.com/a/b", true], // the scheme's default port
    [["github.com:443"], "https://github.com:443/a/b", true],
    [["github.com:443"], "http://github.com/a/b", false],
    [["github.com:80"], "http://github.com/a/b", true],
    [["github.com:8443"], "https://github.com:8443/a/b", true],
    [["github.com:8443"], "https://github.com/a/b", false],
    [["github.com:*"], "https://github.com:8443/a/b", true],
    [["*.example.org"], "https://git.example.org/r", true],
    [["*.example.org"], "https://a.b.example.org/r", true],
    [["*.example.org"], "https://example.org/r", false],
    [["*.example.org"], "https://evilexample.org/r", false],
    [["*.example.org"], "https://git.example.org.evil.net/r", false],
    [["*.example.org:8080"], "http://git.example.org:8080/r", true],
    [["*.example.org:8080"], "http://git.example.org/r", false],
    [["*"], "https://anything.example.net/r", true],
    [["*"], "http://203.0.113.7:9000/r", true],
    [["203.0.113.7"], "http://203.0.113.7/r", true],
    [["203.0.113.7:9000"], "http://203.0.113.7:9000/r", true],
    [["203.0.113.7:9000"], "http://203.0.113.8:9000/r", false],
    [["[2001:db8::7]"], "http://[2001:db8::7]/r", true],
    [["[2001:DB8::7]"], "http://[2001:db8::7]:8080/r", true],
    [["[2001:db8::7]:8080"], "http://[2001:db8::7]:8080/r", true],
    [["[2001:db8::7]:8080"], "http://[2001:db8::7]:8081/r", false],
    [["[2001:db8::7]:8080"], "http://[2001:db8::8]:8080/r", false],
    [["gitlab.com", "*.example.org", "github.com:443"], "https://github.com/a/b", true],
    [[], "https://github.com/a/b", false],
  ])("%j: %s accepted → %s", async (allowedHosts, url, accepted) => {
    const result = checker({ allowedHosts }).check(url);
    if (accepted) await expect(result).resolves.toMatchObject({ url: new URL(url).href });
    else await refusal(result);
  });

  it.each([
    ["https://gist.github.com/a", "repositories on gist.github.com are not allowed by this service"],
    ["https://gist.github.com:8443/a", "repositories on gist.github.com:8443 are not allowed by this service"],
  ])("%s: %s", async (url, message) => {
    const err = await refusal(checker({ allowedHosts: ["github.com"] }).check(url));
    expect(err.message).toBe(message);
  });

  it("does not look up a host that is not allowed", async () => {
    const lookup = fakeLookup();
    await refusal(checker({ allowedHosts: ["github.com"] }, lookup).check("https://example.org/r"));
    expect(lookup.calls).toEqual([]);
  });
});

const REFUSED_ADDRESSES = [
  "0.0.0.0",
  "0.1.2.3",
  "127.0.0.1",
  "127.255.255.254",
  "10.0.0.1",
  "10.255.255.255",
  "172.16.0.1",
  "172.31.255.255",
  "192.168.0.1",
  "192.168.255.255",
  "169.254.169.254", // cloud metadata
  "100.64.0.1", // CGNAT
  "100.127.255.255",
  "224.0.0.1", // multicast
  "239.255.255.250",
  "240.0.0.1", // reserved
  "255.255.255.255",
  "::",
  "::1",
  "fe80::1",
  "febf:ffff::1",
  "fc00::1",
  "fd12:3456:789a::1",
  "ff02::1",
  "::ffff:127.0.0.1", // IPv4-mapped
  "::ffff:10.1.2.3",
  "::ffff:169.254.169.254",
  "::ffff:7f00:1", // IPv4-mapped, hex form
  "::FFFF:A9FE:A9FE",
  "0:0:0:0:0:ffff:7f00:1",
];

const ACCEPTED_ADDRESSES = [
  PUBLIC,
  "8.8.8.8",
  "1.0.0.1",
  "9.255.255.255",
  "11.0.0.0",
  "172.15.255.255",
  "172.32.0.1",
  "192.167.255.255",
  "192.169.0.1",
  "100.63.255.255",
  "100.128.0.1",
  "169.253.255.255",
  "223.255.255.255",
  "2001:db8::1",
  "2606:4700:4700::1111",
  "fec0::1",
  "::2",
  "::ffff:8.8.8.8",
];

describe("UrlChecker: addresses", () => {
  it.each(REFUSED_ADDRESSES)("a host resolving to %s is refused", async (address) => {
    const err = await refusal(checker({}, fakeLookup({ "repo.test": [address] })).check("https://repo.test/r.git"));
    expect(err.message).toMatch(/^repo\.test resolves to \S+, an internal address .*not allowed unless listed in allowedCidrs$/);
  });

  it.each(ACCEPTED_ADDRESSES)("a host resolving to %s is accepted", async (address) => {
    const checked = await checker({}, fakeLookup({ "repo.test": [address] })).check("https://repo.test/r.git");
    expect(checked.addresses).toEqual([address]);
  });

  it.each([
    "http://127.0.0.1/r",
    "http://127.0.0.1:8080/r",
    "http://2130706433/r", // 127.0.0.1, written as a number
    "http://0x7f.0.0.1/r",
    "http://0/r",
    "http://localhost.127.0.0.1.nip.io.invalid/r",
    "http://[::1]/r",
    "http://[0:0:0:0:0:0:0:1]/r",
    "http://[::ffff:127.0.0.1]/r",
    "http://[::ffff:169.254.169.254]/latest/meta-data",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/r",
    "http://10.96.0.1/r",
  ])("%s is refused", async (url) => {
    // the last name but one resolves (through the fake) to loopback
    await refusal(checker({}, fakeLookup({ "localhost.127.0.0.1.nip.io.invalid": ["127.0.0.1"] })).check(url));
  });

  it("checks every address of a host: one internal address refuses it", async () => {
    const err = await refusal(checker({}, fakeLookup({ "repo.test": [PUBLIC, "2001:db8::1", "10.0.0.7"] })).check("https://repo.test/r"));
    expect(err.message).toContain("resolves to 10.0.0.7,");
  });

  it("does not look up an IP address", async () => {
    const lookup = fakeLookup({}, null);
    const checked = await checker({}, lookup).check("http://203.0.113.7:8000/r.git");
    expect(checked.addresses).toEqual(["203.0.113.7"]);
    expect(lookup.calls).toEqual([]);
  });

  it.each<[string[], string, boolean]>([
    [["10.0.0.0/8"], "10.1.2.3", true],
    [["10.1.0.0/16"], "10.1.2.3", true],
    [["10.1.2.3/32"], "10.1.2.3", true],
    [["10.1.0.0/16"], "10.2.0.1", false],
    [["10.1.2.3/32"], "10.1.2.4", false],
    [["10.0.0.0/8"], "127.0.0.1", false],
    [["10.0.0.0/8"], "::ffff:10.1.2.3", true],
    [["10.0.0.0/8"], "::ffff:a01:203", true],
    [["fd00::/8"], "fd00::5", true],
    [["fd00::/8"], "fc00::5", false],
    [["192.168.0.0/16", "fd00::/8"], "192.168.1.1", true],
    [["0.0.0.0/0"], "169.254.169.254", true],
  ])("allowedCidrs %j: %s accepted → %s", async (allowedCidrs, address, accepted) => {
    const result = checker({ allowedCidrs }, fakeLookup({ "git.internal": [address] })).check("http://git.internal/r.git");
    if (accepted) await expect(result).resolves.toMatchObject({ addresses: [address] });
    else await refusal(result);
  });

  it.each<[Partial<UrlPolicy>, string, boolean]>([
    [{ blockedCidrs: ["203.0.113.0/24"] }, "203.0.113.10", false],
    [{ blockedCidrs: ["203.0.113.0/24"] }, "198.51.100.1", true],
    [{ blockedCidrs: ["2001:db8::/32"] }, "2001:db8::1", false],
    [{ blockedCidrs: ["2001:db8::/32"] }, "2001:db9::1", true],
    [{ blockedCidrs: ["203.0.113.0/24"] }, "::ffff:203.0.113.10", false],
    // blockedCidrs join the default ranges: allowedCidrs lets a part of them through, as for the defaults
    [{ blockedCidrs: ["203.0.113.0/24"], allowedCidrs: ["203.0.113.10/32"] }, "203.0.113.10", true],
    [{ blockedCidrs: ["203.0.113.0/24"], allowedCidrs: ["203.0.113.10/32"] }, "203.0.113.11", false],
  ])("%j: %s accepted → %s", async (policy, address, accepted) => {
    const result = checker(policy, fakeLookup({ "repo.test": [address] })).check("https://repo.test/r");
    if (accepted) await expect(result).resolves.toMatchObject({ addresses: [address] });
    else await refusal(result);
  });
});

describe("UrlChecker: blockedEndpoints", () => {
  const policy: Partial<UrlPolicy> = {
    allowedCidrs: ["10.0.0.0/8", "fd00::/8", "127.0.0.0/8"],
    blockedEndpoints: ["10.96.0.1:443", "[FD00::1]:6443", "203.0.113.5:443", "127.0.0.1:6443"],
  };
  const lookup = fakeLookup({
    "kubernetes.test": ["10.96.0.1"],
    "mapped.test": ["::ffff:10.96.0.1"],
    "expanded.test": ["0:0:0:0:0:ffff:a60:1"],
    "v6-expanded.test": ["fd00:0:0::1"],
    "v6.test": ["fd00::1"],
    "public.test": ["203.0.113.5"],
  });

  it.each([
    "https://kubernetes.test/r",
    "http://kubernetes.test:443/r",
    "https://mapped.test/r",
    "https://expanded.test/r",
    "https://v6-expanded.test:6443/r",
    "https://10.96.0.1/r",
    "https://[::ffff:10.96.0.1]/r",
    "https://[::ffff:a60:1]/r",
    "https://v6.test:6443/r",
    "https://[fd00::1]:6443/r",
    "https://public.test/r",
    "https://203.0.113.5/r",
    "https://127.0.0.1:6443/r",
    "https://[::ffff:127.0.0.1]:6443/r",
  ])("%s is refused although its range is allowed", async (url) => {
    const err = await refusal(checker(policy, lookup).check(url));
    expect(err.message).toMatch(/ is the cluster's API server: not a repository$/);
  });

  it.each(["https://kubernetes.test:6443/r", "http://kubernetes.test/r", "https://v6.test/r", "https://[fd00::1]/r", "https://public.test:8443/r", "https://10.96.0.2/r"])(
    "%s (another port or address) is accepted",
    async (url) => {
      await expect(checker(policy, lookup).check(url)).resolves.toMatchObject({ url: new URL(url).href });
    },
  );
});

describe("UrlChecker: the checked URL", () => {
  it.each([
    {
      url: "https://repo.test/user/r.git",
      addresses: [PUBLIC, "2001:db8::10"],
      expected: {
        url: "https://repo.test/user/r.git",
        host: "repo.test",
        port: 443,
        addresses: [PUBLIC, "2001:db8::10"],
        resolve: [`repo.test:443:${PUBLIC}`, "repo.test:443:[2001:db8::10]"],
      },
    },
    {
      url: "HTTP://Repo.Test:8080/r",
      addresses: ["198.51.100.3"],
      expected: { url: "http://repo.test:8080/r", host: "repo.test", port: 8080, addresses: ["198.51.100.3"], resolve: ["repo.test:8080:198.51.100.3"] },
    },
    {
      url: "http://repo.test:80/r",
      addresses: ["198.51.100.3"],
      expected: { url: "http://repo.test/r", host: "repo.test", port: 80, addresses: ["198.51.100.3"], resolve: ["repo.test:80:198.51.100.3"] },
    },
    {
      // nothing to pin for an IP address: no name is resolved (and curl cannot parse an IPv6 host in a pin)
      url: "http://198.51.100.3:8000/r.git",
      addresses: [],
      expected: { url: "http://198.51.100.3:8000/r.git", host: "198.51.100.3", port: 8000, addresses: ["198.51.100.3"], resolve: [] },
    },
    {
      url: "https://[2001:db8::7]/r.git",
      addresses: [],
      expected: { url: "https://[2001:db8::7]/r.git", host: "2001:db8::7", port: 443, addresses: ["2001:db8::7"], resolve: [] },
    },
  ])("$url", async ({ url, addresses, expected }) => {
    await expect(checker({}, fakeLookup({ "repo.test": addresses }, null)).check(url)).resolves.toEqual(expected);
  });

  it("refuses a host that does not resolve, saying why", async () => {
    const err = await refusal(checker({}, fakeLookup({}, null)).check("https://nowhere.test/r"));
    expect(err.message).toBe("cannot resolve the repository host nowhere.test: getaddrinfo ENOTFOUND nowhere.test");
  });

  it("refuses a host without addresses", async () => {
    const err = await refusal(checker({}, fakeLookup({ "empty.test": [] })).check("https://empty.test/r"));
    expect(err.message).toBe("the repository host empty.test has no address");
  });

  it("refuses when the lookup rejects with something other than an Error", async () => {
    const err = await refusal(checker({}, () => Promise.reject("SERVFAIL")).check("https://odd.test/r"));
    expect(err.message).toBe("cannot resolve the repository host odd.test: SERVFAIL");
  });
});

describe("UrlChecker: policy", () => {
  it.each([
    ["allowedCidrs", "10.0.0.0"],
    ["allowedCidrs", "10.0.0.0/"],
    ["allowedCidrs", "10.0.0.0/33"],
    ["allowedCidrs", "10.0.0.0/-1"],
    ["allowedCidrs", "10.0.0.0/8x"],
    ["allowedCidrs", "10.0.0.0/ 8"],
    ["allowedCidrs", "10.0.0.0/8/8"],
    ["allowedCidrs", "fd00::/129"],
    ["allowedCidrs", "example.org/8"],
    ["allowedCidrs", ""],
    ["blockedCidrs", "10.0.0.0"],
    ["blockedCidrs", "300.0.0.0/8"],
  ])("%s: %j is not a CIDR range", (key, cidr) => {
    let error: unknown = null;
    try {
      checker({ [key]: [cidr] });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toBe(`${key}: ${JSON.stringify(cidr)} is not a CIDR range such as 10.0.0.0/8`);
  });

  it.each(["10.0.0.0/0", "10.0.0.0/32", "fd00::/0", "fd00::/128", "10.1.2.3/8"])("%j is a CIDR range", (cidr) => {
    expect(() => checker({ allowedCidrs: [cidr], blockedCidrs: [cidr] })).not.toThrow();
  });

  it("does not let a single allowed address open every range", async () => {
    // a bare address is refused at construction rather than read as a /0
    expect(() => checker({ allowedCidrs: ["10.1.2.3"] })).toThrow(InvalidInputError);
  });
});
