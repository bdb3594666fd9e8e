// A stats pipelined behind writes counts them all, as memcached's one-at-a-time processing does.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killStartedKai, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';

let dir: string;
let kai: KaiProcess;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-pipelined-stats-'));
  kai = await startKai({ dataDir: path.join(dir, 'data'), args: ['--n', '1', '--r', '1', '--w', '1'] });
});

afterAll(async () => {
  await killStartedKai();
  fs.rmSync(dir, { recursive: true, force: true });
});

function stat(reply: string, name: string): number {
  const match = new RegExp(`STAT ${name} (\\d+)\\r\\n`).exec(reply);
  if (!match) throw new Error(`no ${name} in ${reply}`);
  return Number(match[1]);
}

test('a stats written in the same packet as 200 sets sees all 200', async () => {
  const client = await RawClient.connect(kai.memcachePort);
  try {
    let request = 'stats reset\r\n';
    for (let index = 0; index < 200; index++) request += `set pipelined-${index} 0 0 5\r\nvalue\r\n`;
    request += 'stats\r\n';
    // The stats reset answers RESET first; the stats block ends the whole reply.
    client.send(request);
    const all = (await client.readUntil((received) => /STAT total_items \d+\r\n[\s\S]*END\r\n$/.test(received.toString('latin1')))).toString('latin1');
    expect(all.split('STORED\r\n')).toHaveLength(201);
    expect(stat(all, 'cmd_set')).toBe(200);
    expect(stat(all, 'total_items')).toBe(200);
    expect(stat(all, 'curr_items')).toBe(200);
  } finally {
    client.close();
  }
});
