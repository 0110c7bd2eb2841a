// The exact text Prometheus scrapes (exposition format 0.0.4): one line per sample, HELP and TYPE first.
import { describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram, METRICS_CONTENT_TYPE, MetricsRegistry } from "../../../src/service/metrics.js";

describe("Counter", () => {
  it("renders HELP and TYPE only until something is counted", () => {
    expect(new Counter("x_total", "Things").render()).toEqual(["# HELP x_total Things", "# TYPE x_total counter"]);
  });

  it("counts per label set, in first-seen order, whatever the order of the labels' keys", () => {
    const c = new Counter("kce_builds_total", "Builds that ended, by outcome");
    c.inc({ outcome: "success", provider: "gh" });
    c.inc({ outcome: "failure", provider: "gl" }, 2);
    c.inc({ provider: "gh", outcome: "success" }, 3);
    expect(c.render()).toEqual([
      "# HELP kce_builds_total Builds that ended, by outcome",
      "# TYPE kce_builds_total counter",
      'kce_builds_total{outcome="success",provider="gh"} 4',
      'kce_builds_total{outcome="failure",provider="gl"} 2',
    ]);
    expect(c.get({ provider: "gh", outcome: "success" })).toBe(4);
    expect(c.get({ outcome: "failure", provider: "gl" })).toBe(2);
    expect(c.get({ outcome: "failure", provider: "gh" })).toBe(0);
    expect(c.get({ outcome: "failure" })).toBe(0);
  });

  it("counts without labels", () => {
    const c = new Counter("plain_total", "Plain");
    c.inc();
    c.inc({}, 0.5);
    expect(c.render()).toEqual(["# HELP plain_total Plain", "# TYPE plain_total counter", "plain_total 1.5"]);
    expect(c.get()).toBe(1.5);
  });

  it.each([
    ["plain", 'c_total{v="plain"} 1'],
    ['say "hi"', 'c_total{v="say \\"hi\\""} 1'],
    ["back\\slash", 'c_total{v="back\\\\slash"} 1'],
    ["two\nlines", 'c_total{v="two\\nlines"} 1'],
    ['\\"\n', 'c_total{v="\\\\\\"\\n"} 1'],
    ["", 'c_total{v=""} 1'],
    ["é ✓", 'c_total{v="é ✓"} 1'],
  ])("escapes the label value %j", (value, line) => {
    const c = new Counter("c_total", "C");
    c.inc({ v: value });
    expect(c.render()[2]).toBe(line);
  });

  it.each([
    ["a\\b", "# HELP h_total a\\\\b"],
    ["line one\nline two", "# HELP h_total line one\\nline two"],
    ['quotes " stay', '# HELP h_total quotes " stay'],
  ])("escapes the help text %j", (help, line) => {
    expect(new Counter("h_total", help).render()[0]).toBe(line);
  });
});

describe("Histogram", () => {
  it("renders cumulative buckets, +Inf, sum and count per label set", () => {
    const h = new Histogram("kce_wait_seconds", "Time waited", [1, 5, 10]);
    for (const v of [0.5, 1, 3, 7, 20]) h.observe(v, { outcome: "success" });
    h.observe(10, { outcome: "failure" });
    expect(h.render()).toEqual([
      "# HELP kce_wait_seconds Time waited",
      "# TYPE kce_wait_seconds histogram",
      'kce_wait_seconds_bucket{outcome="success",le="1"} 2',
      'kce_wait_seconds_bucket{outcome="success",le="5"} 3',
      'kce_wait_seconds_bucket{outcome="success",le="10"} 4',
      'kce_wait_seconds_bucket{outcome="success",le="+Inf"} 5',
      'kce_wait_seconds_sum{outcome="success"} 31.5',
      'kce_wait_seconds_count{outcome="success"} 5',
      'kce_wait_seconds_bucket{outcome="failure",le="1"} 0',
      'kce_wait_seconds_bucket{outcome="failure",le="5"} 0',
      'kce_wait_seconds_bucket{outcome="failure",le="10"} 1',
      'kce_wait_seconds_bucket{outcome="failure",le="+Inf"} 1',
      'kce_wait_seconds_sum{outcome="failure"} 10',
      'kce_wait_seconds_count{outcome="failure"} 1',
    ]);
  });

  it("renders without labels, and fractional bounds as written", () => {
    const h = new Histogram("q_seconds", "Q", [0.1, 2.5]);
    h.observe(0.05);
    h.observe(0.1);
    h.observe(100);
    expect(h.render()).toEqual([
      "# HELP q_seconds Q",
      "# TYPE q_seconds histogram",
      'q_seconds_bucket{le="0.1"} 2',
      'q_seconds_bucket{le="2.5"} 2',
      'q_seconds_bucket{le="+Inf"} 3',
      "q_seconds_sum 100.15",
      "q_seconds_count 3",
    ]);
  });

  it("keeps one series for the same labels in any key order", () => {
    const h = new Histogram("s_seconds", "S", [1]);
    h.observe(0.5, { a: "1", b: "2" });
    h.observe(2, { b: "2", a: "1" });
    expect(h.render().slice(2)).toEqual(['s_seconds_bucket{a="1",b="2",le="1"} 1', 's_seconds_bucket{a="1",b="2",le="+Inf"} 2', 's_seconds_sum{a="1",b="2"} 2.5', 's_seconds_count{a="1",b="2"} 2']);
  });

  it("renders HELP and TYPE only until something is observed", () => {
    expect(new Histogram("e_seconds", "E", [1]).render()).toEqual(["# HELP e_seconds E", "# TYPE e_seconds histogram"]);
  });
});

describe("Gauge", () => {
  it("reads its value when rendered", () => {
    let value = 3;
    const g = new Gauge("kce_queue_length", "Builds waiting", () => value);
    expect(g.render()).toEqual(["# HELP kce_queue_length Builds waiting", "# TYPE kce_queue_length gauge", "kce_queue_length 3"]);
    value = 0;
    expect(g.render()[2]).toBe("kce_queue_length 0");
  });
});

describe("MetricsRegistry", () => {
  it("renders every metric in the order added, one line each, ending with a newline", () => {
    const registry = new MetricsRegistry();
    const builds = registry.add(new Counter("b_total", "Builds"));
    registry.add(new Gauge("q", "Queue", () => 2));
    const wait = registry.add(new Histogram("w_seconds", "Wait", [1]));
    builds.inc({ outcome: "success" });
    wait.observe(0.25);
    expect(registry.render()).toBe(
      [
        "# HELP b_total Builds",
        "# TYPE b_total counter",
        'b_total{outcome="success"} 1',
        "# HELP q Queue",
        "# TYPE q gauge",
        "q 2",
        "# HELP w_seconds Wait",
        "# TYPE w_seconds histogram",
        'w_seconds_bucket{le="1"} 1',
        'w_seconds_bucket{le="+Inf"} 1',
        "w_seconds_sum 0.25",
        "w_seconds_count 1",
        "",
      ].join("\n"),
    );
  });

  it("returns the metric it adds", () => {
    const registry = new MetricsRegistry();
    const c = new Counter("c_total", "C");
    expect(registry.add(c)).toBe(c);
  });

  it("names the text format's content type", () => {
    expect(METRICS_CONTENT_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
  });
});
