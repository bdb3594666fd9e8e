// One real node's admin HTTP port: /health, /ready, /status, /metrics moving under load, stats and metrics agreeing, and the HTTP refusals.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { adminConnectionsMax, adminPaths } from '../../src/admin/server';
import { statMetrics, statsWithoutMetric } from '../../src/metrics/statistics-metrics';
import { adminRequest, eventually, metricNamesOf, samplesOf, scrape } from '../support/admin';
import { getFreePort, killStartedKai, repoRoot, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';

let baseDir: string;
let kai: KaiProcess;
let adminPort: number;
let client: RawClient;

beforeAll(async () => {
  baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-admin-'));
  adminPort = await getFreePort();
  // An idle timeout, so that `stats` lists idle_kicks too and every row is held to the metrics.
  kai = await startKai({
    dataDir: path.join(baseDir, 'node'),
    args: ['--log-level', 'warn', '--admin-port', String(adminPort), '--n', '1', '--r', '1', '--w', '1', '--idle-timeout', '600000'],
  });
  client = await RawClient.connect(kai.memcachePort);
}, 30_000);

afterAll(async () => {
  client?.close();
  await kai?.stop();
  await killStartedKai();
  fs.rmSync(baseDir, { recursive: true, force: true });
}, 30_000);

/** The rows of a `stats` reply, by name. */
function statRows(reply: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of reply.split('\r\n')) {
    const match = /^STAT (\S+) (.*)$/.exec(line);
    if (match) rows.set(match[1], match[2]);
  }
  return rows;
}

describe('/health and /ready', () => {
  test('/health answers 200 while the node runs, with its uptime', async () => {
    const response = await adminRequest(adminPort, '/health');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(response.body)).toEqual({ alive: true, uptimeSeconds: expect.any(Number) });
  });

  test('/ready answers 200 once the lone node has founded its ring', async () => {
    expect(await eventually(async () => (await adminRequest(adminPort, '/ready')).status === 200, 15_000)).toBe(true);
    expect(JSON.parse((await adminRequest(adminPort, '/ready?verbose=1')).body)).toEqual({ ready: true });
  });
});

describe('/status', () => {
  test("is the node's view: id, ring, members, buckets, quorums, hints, transfers, storage", async () => {
    const response = await adminRequest(adminPort, '/status');
    expect(response.status).toBe(200);
    const status = JSON.parse(response.body);
    const id = `127.0.0.1:${kai.port}`;
    expect(status).toEqual({
      id,
      ready: true,
      ring: { founded: true, version: expect.any(Number), claimant: id, changing: false },
      members: [{ id, address: id, status: 'up', ring: 'owner', zone: '', weight: 1 }],
      seedsAwaited: [],
      quorum: { n: 1, r: 1, w: 1, effective: { n: 1, r: 1, w: 1 } },
      buckets: { total: 1024, served: 1024, belowR: 0, belowW: 0 },
      hints: { pending: 0, bytes: 0, byTarget: [] },
      transfers: expect.objectContaining({ version: 0, bucketsToReceive: 0, bucketsReceived: 0 }),
      storage: expect.objectContaining({ state: 'ok', commitFailures: 0 }),
    });
  });
});

describe('/metrics', () => {
  test('is Prometheus text, and its counters and histograms move under load', async () => {
    const first = await adminRequest(adminPort, '/metrics');
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const before = samplesOf(first.body);
    const writes = 40;
    const misses = 7;
    for (let index = 0; index < writes; index++) {
      expect(await client.request(`set load:${index} 0 0 5\r\nvalue\r\n`)).toBe('STORED\r\n');
      expect(await client.request(`get load:${index}\r\n`, 'END\r\n')).toBe(`VALUE load:${index} 0 5\r\nvalue\r\nEND\r\n`);
    }
    for (let index = 0; index < misses; index++) expect(await client.request(`get absent:${index}\r\n`, 'END\r\n')).toBe('END\r\n');
    expect(await client.request('incr load:0 1\r\n')).toMatch(/^CLIENT_ERROR/);
    const after = await scrape(adminPort);
    const moved = (series: string): number => (after.get(series) ?? 0) - (before.get(series) ?? 0);
    expect(moved('kai_commands_total{command="set",status="hit"}')).toBe(writes);
    expect(moved('kai_commands_total{command="get",status="hit"}')).toBe(writes);
    expect(moved('kai_commands_total{command="get",status="miss"}')).toBe(misses);
    expect(moved('kai_request_duration_seconds_count{command="set",outcome="ok"}')).toBe(writes);
    expect(moved('kai_request_duration_seconds_count{command="get",outcome="ok"}')).toBe(writes + misses);
    expect(moved('kai_request_duration_seconds_count{command="incr",outcome="client_error"}')).toBe(1);
    expect(moved('kai_request_duration_seconds_bucket{command="set",le="+Inf",outcome="ok"}')).toBe(writes);
    expect(moved('kai_request_duration_seconds_sum{command="set",outcome="ok"}')).toBeGreaterThan(0);
    expect(moved('kai_items_stored_total')).toBe(writes);
    expect(moved('kai_memcache_read_bytes_total')).toBeGreaterThan(0);
    // Every write committed, in one batch or several.
    expect(moved('kai_storage_commit_operations_sum')).toBeGreaterThanOrEqual(writes);
    expect(moved('kai_storage_commit_seconds_count{outcome="committed"}')).toBeGreaterThanOrEqual(1);
    expect(after.get('kai_items')).toBeGreaterThanOrEqual(writes);
    expect(after.get('kai_storage_file_bytes{file="database"}')).toBeGreaterThan(0);
    expect(after.get('kai_memcache_connections')).toBeGreaterThanOrEqual(1);
    expect(after.get('kai_ready')).toBe(1);
    expect(after.get('kai_members{status="up"}')).toBe(1);
    expect(after.get('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(after.get('process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  test('reads the same counters stats answers', async () => {
    const stats = statRows(await client.request('stats\r\n', 'END\r\n'));
    const metrics = await scrape(adminPort);
    expect(metrics.get('kai_commands_total{command="get",status="hit"}')).toBe(Number(stats.get('get_hits')));
    expect(metrics.get('kai_commands_total{command="get",status="miss"}')).toBe(Number(stats.get('get_misses')));
    expect(metrics.get('kai_commands_total{command="set",status="hit"}')).toBe(Number(stats.get('cmd_set')));
    expect(metrics.get('kai_items_stored_total')).toBe(Number(stats.get('total_items')));
  });

  test('names a metric for every numeric row of stats and stats kai, or says why not', async () => {
    const mapped = new Set(statMetrics.map((entry) => entry.stat));
    for (const group of ['stats\r\n', 'stats kai\r\n']) {
      for (const [name, value] of statRows(await client.request(group, 'END\r\n'))) {
        if (name.startsWith('hints_pending:')) continue;
        const accounted = mapped.has(name) || name in statsWithoutMetric;
        expect({ name, value, accounted }).toEqual({ name, value, accounted: true });
      }
    }
  });

  test('every metric it shows is listed in docs/operations.md', async () => {
    const operations = fs.readFileSync(path.join(repoRoot, 'docs', 'operations.md'), 'utf8');
    const names = metricNamesOf((await adminRequest(adminPort, '/metrics')).body);
    expect(names.length).toBeGreaterThan(50);
    expect(names.filter((name) => !operations.includes(`\`${name}\``))).toEqual([]);
  });
});

describe('HTTP refusals', () => {
  test('a path it does not have is 404, naming the paths it has', async () => {
    const response = await adminRequest(adminPort, '/metrics/extra');
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body)).toEqual({ code: 'KAI_ADMIN_NOT_FOUND', error: expect.stringContaining(adminPaths.join(', ')) });
  });

  test.each(['POST', 'PUT', 'DELETE', 'PATCH'])('%s is 405 with Allow: GET, on every path', async (method) => {
    for (const adminPath of adminPaths) {
      const response = await adminRequest(adminPort, adminPath, { method });
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe('GET');
      expect(JSON.parse(response.body).code).toBe('KAI_ADMIN_METHOD_NOT_ALLOWED');
    }
  });

  test('a request with a body is 413 and its connection closed', async () => {
    const response = await adminRequest(adminPort, '/health', { method: 'GET', body: 'x'.repeat(100) });
    expect(response.status).toBe(413);
    expect(response.headers.connection).toBe('close');
    expect(JSON.parse(response.body).code).toBe('KAI_ADMIN_REQUEST_TOO_LARGE');
  });

  test('connections past adminConnectionsMax are closed unanswered, and served again once others close', async () => {
    const held = await Promise.all(
      Array.from({ length: adminConnectionsMax }, () => new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(adminPort, '127.0.0.1', () => resolve(socket));
        socket.on('error', reject);
      })),
    );
    try {
      // Connections are accepted in the order they came: the held ones are counted before this one.
      await expect(adminRequest(adminPort, '/health')).rejects.toThrow();
    } finally {
      for (const socket of held) socket.destroy();
    }
    expect(await eventually(async () => (await adminRequest(adminPort, '/health').catch(() => undefined))?.status === 200, 5_000)).toBe(true);
  });

  test('headers past the admin bound are refused with 431', async () => {
    const response = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(adminPort, '127.0.0.1', () => {
        socket.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(16 * 1024)}\r\n\r\n`);
      });
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
      socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5 s')));
    });
    expect(response).toMatch(/^HTTP\/1\.1 431 /);
  });
});

test('a node started without --admin-port opens no admin port and says none in its listening line', async () => {
  const plain = await startKai({ dataDir: path.join(baseDir, 'plain'), args: ['--log-level', 'info'] });
  try {
    expect(await eventually(() => plain.stdout().includes('"msg":"listening"'), 10_000)).toBe(true);
    const listening = plain.stdout().split('\n').find((line) => line.includes('"msg":"listening"'))!;
    expect(JSON.parse(listening)).not.toHaveProperty('adminPort');
  } finally {
    expect((await plain.stop()).code).toBe(0);
  }
});
