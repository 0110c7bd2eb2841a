/**
 * Which repository URLs the service fetches from. A URL must use an allowed scheme, carry no credentials,
 * name an allowed host, and resolve only to addresses outside loopback, link-local, private and cluster
 * ranges (unless such a range is allowed on purpose) — and never to the API server. The addresses checked
 * are handed on (`resolve`), so git connects to exactly those and a second DNS answer cannot differ.
 */
import { BlockList, isIP, SocketAddress } from "node:net";
import { InvalidInputError } from "../errors.js";

export interface UrlPolicy {
  /** Default ["https", "http"]. `file`, `ssh` and `git` are refused whatever this says. */
  allowedSchemes: string[];
  /** `host`, `host:port` or `*.domain` patterns; `*` alone allows any host (the address checks still apply). */
  allowedHosts: string[];
  /** Ranges (CIDR) that are refused by default but may be fetched from here, e.g. an in-cluster git server. */
  allowedCidrs: string[];
  /** Ranges refused besides the defaults (e.g. the cluster's pod and service ranges); allowedCidrs can still open part of one. */
  blockedCidrs: string[];
  /** `ip:port` endpoints always refused (the API server's), whatever the other settings say. */
  blockedEndpoints: string[];
}

/** A URL the policy accepts, with the addresses it was checked against. */
export interface CheckedUrl {
  url: string;
  host: string;
  port: number;
  addresses: string[];
  /** `host:port:address` pins for git (`http.curloptResolve`); none when the host is an IP address. */
  resolve: string[];
}

/** A repository URL the service will not fetch (a `failed` event with status 403, no build). */
export class RepositoryRefusedError extends InvalidInputError {}

/** Resolves a host name to its addresses (node's dns.lookup with `all: true`, or a fake). */
export type Lookup = (host: string) => Promise<string[]>;

const NEVER = new Set(["file", "ssh", "git", "ext", "fd"]);

/** Loopback, unspecified, link-local (incl. cloud metadata), private, shared (CGNAT), multicast, reserved. */
const DEFAULT_BLOCKED: Array<[string, number, "ipv4" | "ipv6"]> = [
  ["0.0.0.0", 8, "ipv4"],
  ["127.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"],
  ["10.0.0.0", 8, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["100.64.0.0", 10, "ipv4"],
  ["224.0.0.0", 4, "ipv4"],
  ["240.0.0.0", 4, "ipv4"],
  ["::", 128, "ipv6"],
  ["::1", 128, "ipv6"],
  ["fe80::", 10, "ipv6"],
  ["fc00::", 7, "ipv6"],
  ["ff00::", 8, "ipv6"],
];

function cidrList(cidrs: string[], what: string): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address = "", bits = "", ...rest] = cidr.split("/");
    const family = isIP(address);
    // Digits only: Number("") is 0, and a bare address read as a /0 would allow (or block) everything.
    const prefix = /^\d+$/.test(bits) ? Number(bits) : NaN;
    if (family === 0 || rest.length > 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
      throw new InvalidInputError(`${what}: ${JSON.stringify(cidr)} is not a CIDR range such as 10.0.0.0/8`);
    }
    list.addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
  }
  return list;
}

/**
 * `::ffff:10.0.0.1` is 10.0.0.1 to the kernel: check it as such. IPv6 is written canonically first, since
 * the URL parser writes `[::ffff:10.0.0.1]` as `[::ffff:a00:1]`.
 */
function unmapped(address: string): string {
  const canonical = isIP(address) === 6 ? new SocketAddress({ address, family: "ipv6" }).address : address;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(canonical);
  return m?.[1] ?? canonical;
}

function hostMatches(pattern: string, host: string, port: number): boolean {
  const p = pattern.toLowerCase().trim();
  if (p === "*") return true;
  const [patternHost, patternPort] = p.startsWith("[") ? [p.slice(0, p.indexOf("]") + 1), p.slice(p.indexOf("]") + 2) || undefined] : p.split(":");
  if (patternPort !== undefined && patternPort !== "*" && Number(patternPort) !== port) return false;
  if (patternHost === undefined) return false;
  if (patternHost.startsWith("*.")) return host.endsWith(patternHost.slice(1)) && host.length > patternHost.length - 1;
  return patternHost.replace(/^\[|\]$/g, "") === host;
}

/** Compiles a policy once (CIDRs parsed), so each request only matches. */
export class UrlChecker {
  private readonly blocked: BlockList;
  private readonly extraBlocked: BlockList;
  private readonly allowed: BlockList;
  private readonly endpoints: Set<string>;

  constructor(
    private readonly policy: UrlPolicy,
    private readonly lookup: Lookup,
  ) {
    this.blocked = new BlockList();
    for (const [address, prefix, family] of DEFAULT_BLOCKED) this.blocked.addSubnet(address, prefix, family);
    this.extraBlocked = cidrList(policy.blockedCidrs, "blockedCidrs");
    this.allowed = cidrList(policy.allowedCidrs, "allowedCidrs");
    this.endpoints = new Set(policy.blockedEndpoints.map((e) => e.toLowerCase()));
  }

  /** @throws RepositoryRefusedError with a message that says what is not allowed. */
  async check(raw: string): Promise<CheckedUrl> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new RepositoryRefusedError(`${JSON.stringify(raw)} is not a URL`);
    }
    const scheme = url.protocol.replace(/:$/, "").toLowerCase();
    if (NEVER.has(scheme) || !this.policy.allowedSchemes.map((s) => s.toLowerCase()).includes(scheme)) {
      throw new RepositoryRefusedError(`repository URLs with scheme ${scheme}:// are not allowed (allowed: ${this.policy.allowedSchemes.join(", ")})`);
    }
    if (url.username !== "" || url.password !== "") {
      throw new RepositoryRefusedError("repository URLs with credentials in them are not accepted");
    }
    const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
    const port = url.port !== "" ? Number(url.port) : scheme === "https" ? 443 : 80;
    if (!this.policy.allowedHosts.some((p) => hostMatches(p, host, port))) {
      throw new RepositoryRefusedError(`repositories on ${host}${url.port ? `:${url.port}` : ""} are not allowed by this service`);
    }
    const literal = isIP(host) !== 0;
    const addresses = literal ? [host] : await this.resolve(host);
    for (const address of addresses) this.checkAddress(host, port, unmapped(address));
    // An IP address is not resolved, so there is nothing to pin (and curl refuses a pin whose host is IPv6).
    const resolve = literal ? [] : addresses.map((a) => `${host}:${port}:${isIP(a) === 6 ? `[${a}]` : a}`);
    return { url: url.href, host, port, addresses, resolve };
  }

  private async resolve(host: string): Promise<string[]> {
    let addresses: string[];
    try {
      addresses = await this.lookup(host);
    } catch (err) {
      throw new RepositoryRefusedError(`cannot resolve the repository host ${host}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (addresses.length === 0) throw new RepositoryRefusedError(`the repository host ${host} has no address`);
    return addresses;
  }

  private checkAddress(host: string, port: number, address: string): void {
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    const endpoint = family === "ipv6" ? `[${address}]:${port}` : `${address}:${port}`;
    if (this.endpoints.has(endpoint.toLowerCase())) {
      throw new RepositoryRefusedError(`${host} is the cluster's API server: not a repository`);
    }
    const internal = this.blocked.check(address, family) || this.extraBlocked.check(address, family);
    if (internal && !this.allowed.check(address, family)) {
      throw new RepositoryRefusedError(
        `${host} resolves to ${address}, an internal address (loopback, private, link-local or cluster range): not allowed unless listed in allowedCidrs`,
      );
    }
  }
}
