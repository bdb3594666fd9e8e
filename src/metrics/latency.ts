/**
 * Latency histograms with one or two labels, cheap on the request path: each label pair's observer is
 * bound once and kept, so a measurement is two map lookups, a clock reading and prom-client's
 * observe. Times come from a monotonic clock in milliseconds and are recorded in seconds, as
 * Prometheus names durations.
 */
import { Histogram, type Registry } from 'prom-client';

/**
 * Bucket bounds, in seconds, of every latency histogram: from 100 µs (a cached read on one node)
 * to 10 s, past the 5 s a request waits for its quorum and the 10 s of a forwarded write.
 */
export const latencyBucketsSeconds: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Label pairs one histogram keeps at most. Every label here comes from a fixed set (commands,
 * request types, outcomes), so this is never reached unless a bug lets free text through; past
 * it, new pairs are recorded under `other`, and the series stay bounded.
 */
export const labelPairsMax = 512;

/** The label value measurements past labelPairsMax are recorded under. */
export const overflowLabel = 'other';

/** Milliseconds from an arbitrary origin that never goes back: for durations only. */
export function monotonicMs(): number {
  return performance.now();
}

type Observe = (seconds: number) => void;

export class LatencyHistogram<First extends string, Second extends string = ''> {
  private readonly histogram: Histogram<string>;
  private readonly twoLabels: boolean;
  private readonly observers = new Map<string, Map<string, Observe>>();
  private pairs = 0;
  private readonly overflow: Observe;

  constructor(registry: Registry, name: string, help: string, labelNames: readonly [string] | readonly [string, string]) {
    this.histogram = new Histogram({ name, help, labelNames, buckets: [...latencyBucketsSeconds], registers: [registry] });
    this.twoLabels = labelNames.length === 2;
    this.overflow = this.bind(overflowLabel, overflowLabel);
  }

  /** The clock reading a measurement starts from. */
  start(): number {
    return monotonicMs();
  }

  /** Records the time since `startedAtMs` (from `start`) under the labels; `second` is '' with one label. */
  record(first: First, second: Second, startedAtMs: number): void {
    this.observerOf(first, second)((monotonicMs() - startedAtMs) / 1000);
  }

  private observerOf(first: string, second: string): Observe {
    let bySecond = this.observers.get(first);
    const known = bySecond?.get(second);
    if (known !== undefined) return known;
    if (this.pairs >= labelPairsMax) return this.overflow;
    if (bySecond === undefined) {
      bySecond = new Map();
      this.observers.set(first, bySecond);
    }
    const observe = this.bind(first, second);
    bySecond.set(second, observe);
    this.pairs++;
    return observe;
  }

  private bind(first: string, second: string): Observe {
    return (this.twoLabels ? this.histogram.labels(first, second) : this.histogram.labels(first)).observe;
  }
}
