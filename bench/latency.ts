// The latency summary every benchmark prints and writes to JSON, read from an HdrHistogram of
// microseconds.

export interface LatencySummaryUs {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** The part of an hdr-histogram-js Histogram the summary reads. */
interface LatencyHistogram {
  getValueAtPercentile(percentile: number): number;
  readonly maxValue: number;
  readonly mean: number;
}

export function latencySummaryUs(histogram: LatencyHistogram): LatencySummaryUs {
  return {
    p50: histogram.getValueAtPercentile(50),
    p99: histogram.getValueAtPercentile(99),
    p999: histogram.getValueAtPercentile(99.9),
    max: histogram.maxValue,
    mean: Math.round(histogram.mean),
  };
}
