/** The build service's metrics at `/metrics` (Prometheus text format). */
import { readFileSync } from "node:fs";
import { Counter, Gauge, Histogram, MetricsRegistry } from "./metrics.js";

/** The process's peak resident memory (VmHWM), bytes; NaN where /proc is missing. */
function peakResidentBytes(): number {
  try {
    const kib = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    return kib === undefined ? Number.NaN : Number(kib) * 1024;
  } catch {
    return Number.NaN;
  }
}

const BUILD_BUCKETS = [10, 30, 60, 120, 300, 600, 1800, 3600];
const QUEUE_BUCKETS = [0.1, 1, 5, 15, 60, 300, 900];

export class ServiceMetrics {
  readonly registry = new MetricsRegistry();
  /** Builds that ended, by outcome (success, failure). */
  readonly builds = this.registry.add(new Counter("kce_service_builds_total", "Builds that ended, by outcome"));
  readonly buildDuration = this.registry.add(
    new Histogram("kce_service_build_duration_seconds", "Time from a build's start (runner Job) to its end, by outcome", BUILD_BUCKETS),
  );
  readonly queueWait = this.registry.add(new Histogram("kce_service_queue_wait_seconds", "Time builds waited for a slot", QUEUE_BUCKETS));
  /** Server launches through JupyterHub, by outcome. */
  readonly launches = this.registry.add(new Counter("kce_service_launches_total", "Server launches through JupyterHub, by outcome"));
  /** Requests by how they were answered: existing (image found), joined, built (new build), refused. */
  readonly requests = this.registry.add(new Counter("kce_service_requests_total", "Build requests, by how they were answered"));
  private readers = { queueLength: (): number => 0, running: (): number => 0 };

  constructor() {
    this.registry.add(new Gauge("kce_service_queue_length", "Builds waiting for a slot", () => this.readers.queueLength()));
    this.registry.add(new Gauge("kce_service_running_builders", "Builds running (runner Jobs) counted by this service", () => this.readers.running()));
    this.registry.add(new Gauge("process_resident_memory_bytes", "Resident memory of the service process", () => process.memoryUsage().rss));
    this.registry.add(new Gauge("kce_service_peak_resident_memory_bytes", "Peak resident memory of the service process (VmHWM)", peakResidentBytes));
  }

  /** Connects the gauges to the queue they read. */
  bind(readers: { queueLength: () => number; running: () => number }): void {
    this.readers = readers;
  }
}
