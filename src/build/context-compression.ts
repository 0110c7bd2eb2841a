/**
 * How the build context is compressed on its way to the builder. Both builders read gzip, but on the links a
 * context usually takes (loopback to a local cluster; a cluster network between engine, API server and
 * kubelet) compressing is slower than sending: gzip level 1 packed ≈ 45–65 MiB/s on one core of the bench
 * machine, while the API server → kubelet path moved ≈ 85 MiB/s uncompressed. So "auto" sends gzip's stored
 * blocks (the framing, no compression, as `docker build` sends its context uncompressed by default), turns
 * compression on once the upload is seen waiting on a link slower than gzip, and turns it off again when the
 * tar then moves no faster (the consumer was slow at something else, e.g. writing many small files).
 */
import { InvalidInputError } from "../errors.js";

/** "auto", or a fixed gzip level 0 (stored) … 9. */
export type ContextCompression = "auto" | number;

/** The knobs of "auto" (exported for tests and tuning). */
export interface AutoCompressionPolicy {
  /** Length of one observation window, ms. */
  windowMs: number;
  /** Samples of the output buffer per window. */
  samplesPerWindow: number;
  /** A link that takes fewer bytes per second than this, while the packer waits on it, is slow. */
  slowLinkBytesPerSecond: number;
  /** Share of a window's samples that must find output waiting for the consumer. */
  backloggedShare: number;
  /** The gzip level once compression is on: 1, the fastest, so gzip does not become the bottleneck. */
  level: number;
  /**
   * After switching, gzip bytes to let through before judging: what was packed stored and still sits in
   * buffers and in the socket's window must drain first.
   */
  settleBytes: number;
  /** Compression stays on only if the tar then moves at least this many times faster. */
  minGain: number;
}

export const AUTO_COMPRESSION: AutoCompressionPolicy = {
  windowMs: 1000,
  samplesPerWindow: 10,
  slowLinkBytesPerSecond: 24 * 1024 * 1024,
  backloggedShare: 0.8,
  level: 1,
  settleBytes: 8 * 1024 * 1024,
  minGain: 1.2,
};

/** What one window saw. */
export interface LinkWindow {
  samples: number;
  /** Samples that found packed output waiting for the consumer (the link is behind, not the packer). */
  backloggedSamples: number;
  /** Gzip bytes the consumer took in the window. */
  bytes: number;
  /** Tar bytes packed in the window. */
  tarBytes: number;
  ms: number;
}

/** Where "auto" is: watching a stored upload, waiting for stored bytes to drain, judging, or decided. */
export type AutoPhase =
  | { kind: "stored" }
  | { kind: "settling"; storedTarRate: number; leftBytes: number }
  | { kind: "trial"; storedTarRate: number }
  | { kind: "decided" };

/**
 * Pure: the phase after a window, and the gzip level to set when it changes. Stored → (slow link) compressed
 * and settling → trial → kept, or back to stored when the tar did not move `minGain` times faster.
 */
export function nextAutoPhase(
  phase: AutoPhase,
  window: LinkWindow,
  policy: AutoCompressionPolicy = AUTO_COMPRESSION,
): { phase: AutoPhase; level?: number } {
  const tarRate = window.ms > 0 ? (window.tarBytes * 1000) / window.ms : 0;
  switch (phase.kind) {
    case "stored":
      if (!linkIsSlow(window, policy)) return { phase };
      return { phase: { kind: "settling", storedTarRate: tarRate, leftBytes: policy.settleBytes }, level: policy.level };
    case "settling": {
      const leftBytes = phase.leftBytes - window.bytes;
      if (leftBytes > 0) return { phase: { ...phase, leftBytes } };
      return { phase: { kind: "trial", storedTarRate: phase.storedTarRate } };
    }
    case "trial":
      if (tarRate >= phase.storedTarRate * policy.minGain) return { phase: { kind: "decided" } };
      return { phase: { kind: "decided" }, level: 0 };
    case "decided":
      return { phase };
  }
}

/** Pure: does a window show an upload bound by a link slow enough that compressing pays? */
export function linkIsSlow(window: LinkWindow, policy: AutoCompressionPolicy = AUTO_COMPRESSION): boolean {
  if (window.samples === 0 || window.ms <= 0) return false;
  const backlogged = window.backloggedSamples / window.samples >= policy.backloggedShare;
  return backlogged && (window.bytes * 1000) / window.ms < policy.slowLinkBytesPerSecond;
}

/** Validates an option or environment value: "auto", "none" (= 0), or a level 0–9. */
export function parseContextCompression(value: unknown, name: string): ContextCompression {
  if (value === "auto") return "auto";
  if (value === "none") return 0;
  const level = typeof value === "string" && /^\d$/.test(value.trim()) ? Number(value) : value;
  if (typeof level === "number" && Number.isInteger(level) && level >= 0 && level <= 9) return level;
  throw new InvalidInputError(`${name} must be "auto", "none" or a gzip level 0–9, not ${JSON.stringify(value)}`);
}
