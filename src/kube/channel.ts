/**
 * Framing of the Kubernetes channel websocket protocols (`v4.channel.k8s.io`, `v5.channel.k8s.io`): every
 * binary message is one channel byte followed by the payload. Channels: 0 stdin, 1 stdout, 2 stderr,
 * 3 error/status (a JSON `Status`), 4 resize; v5 adds 255 = close, payload = the channel to close. Pure.
 */
import { parseStatusBody, type StatusBody } from "./api-errors.js";

/** Subprotocol that can half-close stdin (API server ≥ 1.30). */
export const PROTOCOL_V5 = "v5.channel.k8s.io";
/** Older subprotocol: closing stdin means closing the whole websocket. */
export const PROTOCOL_V4 = "v4.channel.k8s.io";

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const STATUS = 3;
export const RESIZE = 4;
export const CLOSE = 255;

/** One channel message. */
export interface Frame {
  channel: number;
  data: Buffer;
}

/** `[channel, ...data]` in one new buffer. */
export function encodeFrame(channel: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(data.length + 1);
  out[0] = channel;
  out.set(data, 1);
  return out;
}

/** Splits a received binary message; null for an empty message. */
export function decodeFrame(message: Buffer): Frame | null {
  if (message.length === 0) return null;
  return { channel: message[0] ?? 0, data: message.subarray(1) };
}

/** The v5 message that closes the given channel (stdin by default): `[255, channel]`. */
export function closeFrame(channel = STDIN): Buffer {
  return Buffer.from([CLOSE, channel]);
}

/** Whether the agreed subprotocol can close stdin without closing the session. */
export function supportsHalfClose(protocol: string): boolean {
  return protocol === PROTOCOL_V5;
}

/** The outcome of a command, from the status channel. */
export interface ExecStatus {
  /** "Success" or "Failure". */
  status: string;
  /** 0 on success; the command's exit code when it exited non-zero; null when it did not get to run. */
  exitCode: number | null;
  reason: string | null;
  message: string | null;
}

/** Reads the `Status` JSON of channel 3. */
export function parseExecStatus(payload: Buffer | string): ExecStatus {
  const s: StatusBody | null = parseStatusBody(payload.toString());
  const status = s?.status ?? "Failure";
  let exitCode: number | null = status === "Success" ? 0 : null;
  const cause = s?.details?.causes?.find((c) => c.reason === "ExitCode");
  if (cause?.message !== undefined && /^\d+$/.test(cause.message)) exitCode = Number(cause.message);
  return { status, exitCode, reason: s?.reason ?? null, message: s?.message ?? null };
}

/**
 * Port-forward (`v4.channel.k8s.io` on the portforward subresource): for the i-th requested port, channel
 * 2i carries data and 2i+1 errors, and the server starts each channel with a message holding just the port
 * as 2 bytes little-endian. On the local cluster (containerd 1.6's streaming server) that message is
 * sometimes missing, so it is dropped only when the first message of a channel is exactly that port.
 */
export class PortPrefixStripper {
  private readonly seen = new Set<number>();

  /** `ports[i]` is the port requested i-th (channels 2i and 2i+1). */
  constructor(private readonly ports: number[]) {}

  /** Returns the payload to use (possibly empty) for a message on `channel`. */
  strip(channel: number, data: Buffer): Buffer {
    if (this.seen.has(channel)) return data;
    this.seen.add(channel);
    const port = this.ports[Math.floor(channel / 2)];
    if (port !== undefined && data.length === 2 && data.readUInt16LE(0) === port) return data.subarray(2);
    return data;
  }
}
