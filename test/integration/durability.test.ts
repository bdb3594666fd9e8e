/**
 * Durability of a real node: every write kai acknowledged survives `kill -9` and a restart, and a
 * SIGTERM lets requests already received finish before the node exits.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killStartedKai, startKai } from '../support/process';
import { RawClient } from '../support/raw-client';

const dataDirs: string[] = [];

function freshDataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-durable-'));
  dataDirs.push(dir);
  return dir;
}

function countOf(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

afterAll(async () => {
  await killStartedKai();
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

it('keeps every acknowledged set across kill -9 and restart', async () => {
  // Proves acknowledgement means committed: the node is killed while sets stream in, and every set
  // answered STORED before the kill is readable after a restart.
  const dataDir = freshDataDir();
  const kai = await startKai({ dataDir, args: ['--log-level', 'warn'] });
  const client = await RawClient.connect(kai.memcachePort);
  const setsSent = 20_000;
  let request = '';
  for (let index = 0; index < setsSent; index++) {
    const value = `value-${index}`;
    request += `set durable:${index} ${index} 0 ${value.length}\r\n${value}\r\n`;
  }
  client.send(request);
  const acknowledged = await client.readUntil((received) => countOf(received.toString(), 'STORED\r\n') >= 2_000, 20_000);
  await kai.kill();
  // Replies come in request order, so the acknowledged sets are the first ones sent.
  const acknowledgedCount = countOf(acknowledged.toString(), 'STORED\r\n');
  client.close();

  const restarted = await startKai({ dataDir, port: kai.port, args: ['--log-level', 'warn'] });
  const reader = await RawClient.connect(restarted.memcachePort);
  const batch = 100;
  for (let first = 0; first < acknowledgedCount; first += batch) {
    const keys: string[] = [];
    for (let index = first; index < Math.min(first + batch, acknowledgedCount); index++) keys.push(`durable:${index}`);
    const reply = await reader.request(`get ${keys.join(' ')}\r\n`, 'END\r\n');
    expect(countOf(reply, 'VALUE ')).toBe(keys.length);
    expect(reply).toContain(`VALUE ${keys[0]} ${first} `);
  }
  reader.close();
  expect((await restarted.stop()).code).toBe(0);
});

it('finishes requests already received when stopped by SIGTERM', async () => {
  // Proves a graceful stop answers the pipelined requests it started and keeps what it stored.
  const dataDir = freshDataDir();
  const kai = await startKai({ dataDir, args: ['--log-level', 'warn'] });
  const client = await RawClient.connect(kai.memcachePort);
  const sets = 500;
  let request = '';
  for (let index = 0; index < sets; index++) request += `set graceful:${index} 0 0 1\r\nx\r\n`;
  client.send(request);
  const first = (await client.readUntil((received) => received.length > 0, 10_000)).toString();
  const status = await kai.stop();
  const rest = client.closed ? '' : (await client.readUntil(() => client.closed, 10_000)).toString();
  client.close();
  expect(status.code).toBe(0);
  const replies = first + rest;
  const answered = countOf(replies, 'STORED\r\n');
  // Only whole STORED replies, nothing else, and nothing cut mid-reply.
  expect(replies).toBe('STORED\r\n'.repeat(answered));

  const restarted = await startKai({ dataDir, port: kai.port, args: ['--log-level', 'warn'] });
  const reader = await RawClient.connect(restarted.memcachePort);
  const keys = Array.from({ length: answered }, (_, index) => `graceful:${index}`);
  const reply = await reader.request(`get ${keys.join(' ')}\r\n`, 'END\r\n');
  expect(countOf(reply, 'VALUE ')).toBe(answered);
  reader.close();
  expect((await restarted.stop()).code).toBe(0);
});
