/** The build service's metrics at `/metrics` (Prometheus text format). */
import { Counter, Gauge, Histogram, MetricsRegistry } from "./metrics.js";

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
  /** Requests by how they were answered: existing (image found), joined, built (new build), refused. */
  readonly requests = this.registry.add(new Counter("kce_service_requests_total", "Build requests, by how they were answered"));
  private readers = { queueLength: (): number => 0, running: (): number => 0 };

  constructor() {
    this.registry.add(new Gauge("kce_service_queue_length", "Builds waiting for a slot", () => this.readers.queueLength()));
    this.registry.add(new Gauge("kce_service_running_builders", "Builds running (runner Jobs) counted by this service", () => this.readers.running()));
  }

  /** Connects the gauges to the queue they read. */
  bind(readers: { queueLength: () => number; running: () => number }): void {
    this.readers = readers;
  }
}
