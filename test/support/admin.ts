/**
 * Talking to a node's admin HTTP port in tests: one request with a bounded wait, the Prometheus
 * text format read back into samples, and a bounded poll for a condition to hold.
 */
import http from 'node:http';
import { loopbackHost } from './servers';

/** How long one admin request may take before the test fails it. */
export const adminRequestTimeoutMs = 5_000;
/** Between two polls of eventually(). */
export const pollIntervalMs = 100;

export interface AdminResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request to the admin port on 127.0.0.1; rejects on a connection error or after the timeout. */
export function adminRequest(port: number, path: string, options: { method?: string; body?: string } = {}): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: loopbackHost,
        port,
        path,
        method: options.method ?? 'GET',
        timeout: adminRequestTimeoutMs,
        agent: false,
        // A GET's body is framed only when its length is said.
        headers: options.body === undefined ? {} : { 'content-length': Buffer.byteLength(options.body) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${options.method ?? 'GET'} ${path} took over ${adminRequestTimeoutMs} ms`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

/**
 * Every sample of an exposition, by its series to its value. A series is written
 * `name{label="value",...}` with its labels in alphabetical order, whatever order they were
 * printed in (prom-client puts a histogram's `le` first).
 */
export function samplesOf(exposition: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(seriesOf(line.slice(0, space)), Number(line.slice(space + 1)));
  }
  return samples;
}

function seriesOf(printed: string): string {
  const brace = printed.indexOf('{');
  if (brace === -1) return printed;
  const labels = [...printed.slice(brace).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((match) => `${match[1]}="${match[2]}"`);
  return `${printed.slice(0, brace)}{${labels.sort().join(',')}}`;
}

/** The metric names an exposition declares (its `# TYPE` lines). */
export function metricNamesOf(exposition: string): string[] {
  return exposition
    .split('\n')
    .filter((line) => line.startsWith('# TYPE '))
    .map((line) => line.split(' ')[2]);
}

/** The metrics of the node at `port`, as samples. */
export async function scrape(port: number): Promise<Map<string, number>> {
  const response = await adminRequest(port, '/metrics');
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}: ${response.body}`);
  return samplesOf(response.body);
}

/** Polls `condition` until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
}
