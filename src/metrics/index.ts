/**
 * One node's metrics, in Prometheus' text format through prom-client: the process and Node.js
 * runtime (event-loop lag, memory, CPU, garbage collection), the latency histograms the node's
 * parts fill (timings.ts), memcached's and kai's `stats` counters read at scrape time
 * (statistics-metrics.ts), and gauges read from the node's parts (node-collectors.ts).
 * docs/operations.md, *Metrics*, lists every name.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { registerNodeCollectors, type CollectedParts } from './node-collectors';
import { registerStatisticsMetrics, type StatisticsGroup, type StatisticsRows } from './statistics-metrics';
import { NodeTimings } from './timings';

export { NodeTimings } from './timings';

export class NodeMetrics {
  readonly registry = new Registry();
  /** Made before the node's parts, which are handed its timers as they are built. */
  readonly timings: NodeTimings;
  private readonly refreshers: { refresh(): void }[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.timings = new NodeTimings(this.registry);
  }

  /** Registers what is read at scrape time, once the node's parts exist. */
  attach(statistics: (group: StatisticsGroup) => StatisticsRows, parts: CollectedParts): void {
    this.refreshers.push(registerStatisticsMetrics(this.registry, statistics), registerNodeCollectors(this.registry, parts));
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the text exposition format, read now. */
  render(): Promise<string> {
    for (const refresher of this.refreshers) refresher.refresh();
    return this.registry.metrics();
  }
}
