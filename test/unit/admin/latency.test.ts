// Latency histograms: measurements land under their labels in seconds, and label pairs past the bound go under `other`.
import { Registry } from 'prom-client';
import { LatencyHistogram, labelPairsMax, overflowLabel } from '../../../src/metrics/latency';
import { samplesOf } from '../../support/admin';

/** The `_count` samples of the registry's one histogram, by series. */
async function counts(registry: Registry): Promise<Map<string, number>> {
  const samples = samplesOf(await registry.metrics());
  return new Map([...samples].filter(([series]) => /^\w+_count/.test(series)));
}

test('records each measurement under its two labels', async () => {
  const registry = new Registry();
  const histogram = new LatencyHistogram<string, string>(registry, 'test_seconds', 'test', ['command', 'outcome']);
  histogram.record('get', 'ok', histogram.start());
  histogram.record('get', 'ok', histogram.start());
  histogram.record('set', 'server_error', histogram.start());
  expect(await counts(registry)).toEqual(
    new Map([
      ['test_seconds_count{command="get",outcome="ok"}', 2],
      ['test_seconds_count{command="set",outcome="server_error"}', 1],
    ]),
  );
});

test('records with one label', async () => {
  const registry = new Registry();
  const histogram = new LatencyHistogram<string>(registry, 'one_seconds', 'test', ['outcome']);
  histogram.record('committed', '', histogram.start());
  expect(await counts(registry)).toEqual(new Map([['one_seconds_count{outcome="committed"}', 1]]));
});

test('label pairs past labelPairsMax are recorded under other, so the series stay bounded', async () => {
  const registry = new Registry();
  const histogram = new LatencyHistogram<string, string>(registry, 'many_seconds', 'test', ['a', 'b']);
  for (let index = 0; index < labelPairsMax + 10; index++) histogram.record(`k${index}`, 'ok', histogram.start());
  const recorded = await counts(registry);
  expect(recorded.get(`many_seconds_count{a="${overflowLabel}",b="${overflowLabel}"}`)).toBe(10);
  expect(recorded.size).toBe(labelPairsMax + 1);
});
