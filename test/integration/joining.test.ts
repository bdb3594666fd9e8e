/**
 * A node told to join through a seed that has not answered yet does not act as a cluster of one:
 * it does not know the ring yet, so it refuses requests, in memcache's words, naming the seed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { getFreePort, killStartedKai, startKai } from '../support/process';
import { RawClient } from '../support/raw-client';

let dataDir: string;

afterAll(async () => {
  await killStartedKai();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

it('refuses writes while its seed has not answered', async () => {
  // Proves an acknowledged write is never held by one node when N, R and W ask for more.
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-joining-'));
  const silentSeed = `127.0.0.1:${await getFreePort()}`;
  const kai = await startKai({ dataDir, args: ['--log-level', 'warn', '--n', '3', '--r', '2', '--w', '2', '--seed', silentSeed] });
  const client = await RawClient.connect(kai.memcachePort);
  const reply = await client.request('set joining 0 0 1\r\nx\r\n');
  expect(reply).toBe(`SERVER_ERROR quorum not met (joining: waiting to hear from ${silentSeed})\r\n`);
  client.close();
  expect((await kai.stop()).code).toBe(0);
});
