/**
 * Metrics whose values are read at scrape time, not kept: prom-client gauges and counters whose
 * `collect` sets them from a reader. A counter read so is still a counter (it only grows, or
 * falls to 0 on `stats reset`, which Prometheus takes as a restart of the count).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricDescription {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
}

/** Empties `metric` and puts every sample read: a label set no longer read is gone from it. */
function refill(metric: { reset(): void }, read: () => Iterable<Sample>, put: (sample: Sample) => void): void {
  metric.reset();
  for (const sample of read()) put(sample);
}

/** A gauge or counter whose samples are read afresh at each scrape. */
export function readMetric(registry: Registry, type: 'gauge' | 'counter', metric: MetricDescription, read: () => Iterable<Sample>): void {
  const config = { name: metric.name, help: metric.help, labelNames: [...metric.labelNames], registers: [registry] };
  if (type === 'gauge') {
    new Gauge({ ...config, collect() { refill(this, read, (sample) => this.set({ ...sample.labels }, sample.value)); } });
  } else {
    new Counter({ ...config, collect() { refill(this, read, (sample) => this.inc({ ...sample.labels }, sample.value)); } });
  }
}

/** A gauge with no labels, set from `read` at each scrape. */
export function readGauge(registry: Registry, name: string, help: string, read: () => number): void {
  readMetric(registry, 'gauge', { name, help, labelNames: [] }, () => [{ labels: {}, value: read() }]);
}

/** A metric with one label, read as pairs of the label's value and the number. */
export function readLabelled(
  registry: Registry,
  type: 'gauge' | 'counter',
  metric: { readonly name: string; readonly help: string; readonly label: string },
  read: () => Iterable<readonly [string, number]>,
): void {
  const { name, help, label } = metric;
  readMetric(registry, type, { name, help, labelNames: [label] }, function* () {
    for (const [value, number] of read()) yield { labels: { [label]: value }, value: number };
  });
}
