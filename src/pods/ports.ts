/**
 * Port options → the port forwards the engine opens on the client machine. The Kubernetes API forwards TCP
 * only, so UDP and SCTP are rejected. All parsing happens before anything is sent to the cluster.
 */
import { isIP } from "node:net";
import type { PortBinding } from "../contract.js";
import { InvalidInputError } from "../errors.js";

/**
 * Local address used when a binding names none. Docker's default is 0.0.0.0; a port-forward opened on every
 * interface would publish the user's server to their network, so we follow kubectl port-forward instead.
 */
export const DEFAULT_LOCAL_ADDRESS = "127.0.0.1";

/** One forward: `localAddress:localPort` on the client → `containerPort` in the pod. */
export interface PortForwardSpec {
  /** The contract's key for it, always `"<port>/tcp"`. */
  key: string;
  /** 1–65535. */
  containerPort: number;
  protocol: "TCP";
  /** An IP address or "localhost". */
  localAddress: string;
  /** 1–65535, or 0 for "any free port" (the forwarder picks one and reports it). */
  localPort: number;
}

/** Options of {@link parsePortBindings}. */
export interface PortParseOptions {
  /** Forward every TCP port the image exposes (to any free local port) that `ports` does not name. */
  publishAllPorts?: boolean;
  /** The image config's `ExposedPorts` (`{"8888/tcp": {}}`) or its keys; used by `publishAllPorts`. */
  exposedPorts?: Record<string, object> | readonly string[];
  /** Default {@link DEFAULT_LOCAL_ADDRESS}. */
  defaultAddress?: string;
}

const bad = (message: string): never => {
  throw new InvalidInputError(message);
};

/**
 * Parses a container-port key: `"8888"`, `"8888/tcp"` (case-insensitive).
 * @returns the port number
 * @throws InvalidInputError for UDP/SCTP ("cannot forward UDP through the Kubernetes API"), other protocols,
 *   and ports that are not integers in 1–65535
 */
export function parseContainerPortKey(key: string): number {
  const match = /^\s*([^/\s]+)\s*(?:\/\s*([A-Za-z]+)\s*)?$/.exec(key);
  if (!match) return bad(`port ${JSON.stringify(key)}: expected "<port>" or "<port>/tcp"`);
  const protocol = (match[2] ?? "tcp").toLowerCase();
  if (protocol === "udp" || protocol === "sctp") {
    return bad(
      `port ${JSON.stringify(key)}: cannot forward ${protocol.toUpperCase()} through the Kubernetes API ` +
        "(port-forward carries TCP only); drop it, or reach the pod through a Service of your cluster",
    );
  }
  if (protocol !== "tcp") return bad(`port ${JSON.stringify(key)}: unknown protocol ${JSON.stringify(match[2])}`);
  return portNumber(match[1] ?? "", `container port in ${JSON.stringify(key)}`);
}

/** An integer port in 1–65535 (0–65535 with `allowAny`: a local port 0 means "any free port", as in Docker). */
function portNumber(value: string | number, what: string, allowAny = false): number {
  const text = typeof value === "number" ? String(value) : value.trim();
  if (!/^\d+$/.test(text)) {
    return bad(`${what}: ${JSON.stringify(value)} is not a port number${text.includes("-") ? " (ranges are not supported)" : ""}`);
  }
  const port = Number(text);
  if (port < (allowAny ? 0 : 1) || port > 65535) return bad(`${what}: ${port} is outside ${allowAny ? 0 : 1}–65535`);
  return port;
}

function localAddress(value: unknown, key: string): string {
  if (typeof value !== "string") return bad(`port ${JSON.stringify(key)}: the local address must be a string`);
  const address = value.trim().replace(/^\[(.*)\]$/, "$1");
  if (address === "localhost" || isIP(address) !== 0) return address;
  return bad(`port ${JSON.stringify(key)}: ${JSON.stringify(value)} is not an IP address (or "localhost")`);
}

/** One binding value → `[localAddress, localPort]` (0 = any free port). */
function parseBinding(key: string, binding: unknown, defaultAddress: string): [string, number] {
  const what = `local port for ${JSON.stringify(key)}`;
  if (binding === null || binding === undefined) return [defaultAddress, 0];
  if (typeof binding === "number" || typeof binding === "string") return [defaultAddress, portNumber(binding, what, true)];
  if (Array.isArray(binding) && binding.length >= 1 && binding.length <= 2) {
    const address = localAddress(binding[0], key);
    const port: unknown = binding[1];
    if (port === null || port === undefined) return [address, 0];
    if (typeof port === "number" || typeof port === "string") return [address, portNumber(port, what, true)];
  }
  return bad(`port ${JSON.stringify(key)}: expected a local port, [address, port] or null, got ${JSON.stringify(binding)}`);
}

const WILDCARDS = new Set(["0.0.0.0", "::"]);

function checkConflicts(forwards: readonly PortForwardSpec[], keys: readonly string[]): void {
  const seen = new Map<number, string>();
  for (const [i, forward] of forwards.entries()) {
    const other = seen.get(forward.containerPort);
    if (other !== undefined) bad(`container port ${forward.containerPort} is bound twice ("${other}" and "${keys[i]}")`);
    seen.set(forward.containerPort, keys[i] ?? forward.key);
  }
  for (const [i, a] of forwards.entries()) {
    for (const b of forwards.slice(i + 1)) {
      const overlap = a.localAddress === b.localAddress || WILDCARDS.has(a.localAddress) || WILDCARDS.has(b.localAddress);
      if (a.localPort !== 0 && a.localPort === b.localPort && overlap) {
        bad(`local port ${a.localPort} is bound to both container ports ${a.containerPort} and ${b.containerPort}`);
      }
    }
  }
}

/** The exposed TCP ports, as numbers; UDP/SCTP ones are left out (see {@link unforwardableExposedPorts}). */
function exposedTcpPorts(exposed: PortParseOptions["exposedPorts"]): number[] {
  const keys = Array.isArray(exposed) ? exposed : Object.keys(exposed ?? {});
  return keys.filter((k) => !/\/(udp|sctp)$/i.test(k)).map((k) => parseContainerPortKey(k));
}

/** The exposed ports `publishAllPorts` skips because they are not TCP (so the caller can warn about them). */
export function unforwardableExposedPorts(exposed: PortParseOptions["exposedPorts"]): string[] {
  const keys = Array.isArray(exposed) ? exposed : Object.keys(exposed ?? {});
  return keys.filter((k) => /\/(udp|sctp)$/i.test(k));
}

/**
 * Parses the contract's `ports` (and `publishAllPorts`) into port forwards, in key order, then the published
 * exposed ports in ascending order.
 * @param ports keys `"8888/tcp"` or `"8888"`; values a local port (string or number), `[address, port]`,
 *   or null for any free port (a local port 0 also means any free port, as in Docker and kubectl)
 * @throws InvalidInputError for UDP/SCTP, container ports outside 1–65535, local ports outside 0–65535, non-numeric
 *   ports or ranges, addresses that are not IPs, a container port bound twice, a local port bound twice
 */
export function parsePortBindings(
  ports: Record<string, PortBinding> | null | undefined,
  options: PortParseOptions = {},
): PortForwardSpec[] {
  const defaultAddress = options.defaultAddress ?? DEFAULT_LOCAL_ADDRESS;
  const entries = Object.entries(ports ?? {});
  const forwards: PortForwardSpec[] = entries.map(([key, binding]) => {
    const containerPort = parseContainerPortKey(key);
    const [address, localPort] = parseBinding(key, binding, defaultAddress);
    return { key: `${containerPort}/tcp`, containerPort, protocol: "TCP", localAddress: address, localPort };
  });
  checkConflicts(
    forwards,
    entries.map(([key]) => key),
  );
  return options.publishAllPorts ? withPublishedPorts(forwards, options.exposedPorts, defaultAddress) : forwards;
}

/**
 * `forwards` (already parsed) plus every TCP port the image exposes that they do not name, in ascending
 * order, each to any free local port on `defaultAddress` (Docker's `-P`).
 */
export function withPublishedPorts(
  forwards: readonly PortForwardSpec[],
  exposedPorts: PortParseOptions["exposedPorts"],
  defaultAddress: string = DEFAULT_LOCAL_ADDRESS,
): PortForwardSpec[] {
  const bound = new Set(forwards.map((f) => f.containerPort));
  const extra = [...new Set(exposedTcpPorts(exposedPorts))].filter((p) => !bound.has(p)).sort((a, b) => a - b);
  return [
    ...forwards,
    ...extra.map((port): PortForwardSpec => ({ key: `${port}/tcp`, containerPort: port, protocol: "TCP", localAddress: defaultAddress, localPort: 0 })),
  ];
}

/**
 * Parses one CLI `-p` flag like Docker's: `container`, `local:container`, `addr:local:container`,
 * `addr::container` (any local port), each optionally ending `/tcp`; IPv6 addresses in brackets.
 * @returns the contract's `ports` entry for it
 * @throws InvalidInputError for UDP/SCTP, ranges, bad ports or addresses, unbracketed IPv6
 */
export function parsePublishFlag(flag: string): { key: string; binding: PortBinding } {
  let rest = flag.trim();
  let address: string | null = null;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  if (v6) {
    address = localAddress(v6[1] ?? "", flag);
    rest = v6[2] ?? "";
  }
  const parts = rest.split(":");
  if (parts.length > (address === null ? 3 : 2)) {
    bad(`-p ${JSON.stringify(flag)}: expected [address:]local:container[/tcp]; put IPv6 addresses in brackets`);
  }
  const containerPart = parts.pop() ?? "";
  const localPart = parts.pop();
  if (address === null && parts.length === 1) address = localAddress(parts[0], flag);
  const port = parseContainerPortKey(containerPart);
  const key = `${port}/tcp`;
  const local =
    localPart === undefined || localPart === "" ? null : portNumber(localPart, `local port in -p ${JSON.stringify(flag)}`, true);
  if (address === null) return { key, binding: local };
  return { key, binding: [address, local ?? 0] };
}

/**
 * Parses repeated `-p` flags into the contract's `ports`.
 * @throws InvalidInputError as {@link parsePublishFlag}, and when two flags name the same container port
 */
export function publishFlagsToPorts(flags: readonly string[]): Record<string, PortBinding> {
  const ports: Record<string, PortBinding> = {};
  for (const flag of flags) {
    const { key, binding } = parsePublishFlag(flag);
    if (key in ports) bad(`-p ${JSON.stringify(flag)}: container port ${key} is already published`);
    ports[key] = binding;
  }
  return ports;
}
