/**
 * A healthy 3-node cluster of real `bin/kai` processes (N=3 R=2 W=2) answers every well-formed
 * request correctly under loads that once made it refuse: multigets of 1,030, 3,000 and 100,000
 * keys, while another client's requests go on; 16 connections of 256 pipelined sets each; and a
 * client that sends wide multigets and never reads a reply, beside one that does. The nodes' own
 * memory stays bounded while the unread replies pile up.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startCluster, type ClusterNode } from '../support/cluster';
import { killStartedKai } from '../support/process';
import { loopbackHost } from '../support/servers';

// The default gossip interval: a node is taken for down after five silent intervals, and the
// preload below keeps two cores busy enough to delay a 200 ms gossip round by a second.
const args = ['--n', '3', '--r', '2', '--w', '2', '--log-level', 'warn'];
/** Keys preloaded: the first fifth of the 100,000-key multiget. */
const preloadedKeys = 20_000;
/** Every wait on a reply is bounded by this. */
const replyTimeoutMs = 120_000;
/** A node's resident memory while a client leaves wide multigets unread stays under this. */
const residentBytesMax = 400 * 1024 * 1024;

let workDir: string;
let nodes: ClusterNode[];

const keyOf = (index: number): string => `cap:${index}`;
/** A value that names its key, padded to 200 bytes. */
const valueOf = (index: number): string => `value-of-${keyOf(index)}-`.padEnd(200, 'x');

/**
 * A text-protocol client that keeps what it receives as chunks and parses it only once complete,
 * so replies of tens of megabytes cost it no quadratic copying.
 */
class Client {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private waiter: (() => void) | undefined;
  private closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: loopbackHost }, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new Client(socket));
      });
      socket.once('error', reject);
    });
  }

  send(text: string): void {
    this.socket.write(text, 'latin1');
  }

  /** The last bytes received, for end-of-reply checks without joining everything. */
  private tail(length: number): string {
    const parts: Buffer[] = [];
    let have = 0;
    for (let index = this.chunks.length - 1; index >= 0 && have < length; index--) {
      parts.unshift(this.chunks[index]);
      have += this.chunks[index].length;
    }
    return Buffer.concat(parts).toString('latin1').slice(-length);
  }

  /** Resolves when bytes arrive or the connection closes, or after `waitMs`. */
  private async arrival(waitMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.waiter = undefined;
  }

  /** Whether what was received so far is an error line, which ends any reply. */
  private failedLine(): boolean {
    const head = this.chunks[0].toString('latin1', 0, 64);
    return /^(ERROR|SERVER_ERROR|CLIENT_ERROR)/.test(head) && this.tail(2) === '\r\n';
  }

  /** Waits until the received bytes end with `suffix` (checked on each arrival), then takes them. */
  async takeUntilEndsWith(suffix: string): Promise<Buffer> {
    const deadline = Date.now() + replyTimeoutMs;
    while (!(this.bytes > 0 && (this.tail(suffix.length) === suffix || this.failedLine()))) {
      if (this.closed) throw new Error(`connection closed after ${this.bytes} bytes`);
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new Error(`no complete reply within ${replyTimeoutMs} ms (${this.bytes} bytes: ...${this.tail(200)})`);
      await this.arrival(remainingMs);
    }
    const taken = Buffer.concat(this.chunks);
    this.chunks = [];
    this.bytes = 0;
    return taken;
  }

  /** Waits for `count` CRLF-terminated lines. */
  async takeLines(count: number): Promise<string[]> {
    const deadline = Date.now() + replyTimeoutMs;
    for (;;) {
      const text = Buffer.concat(this.chunks).toString('latin1');
      const lines = text.split('\r\n');
      if (lines.length - 1 >= count) {
        this.chunks = [];
        this.bytes = 0;
        return lines.slice(0, count);
      }
      if (this.closed) throw new Error(`connection closed after ${lines.length - 1} of ${count} lines`);
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new Error(`${lines.length - 1} of ${count} lines within ${replyTimeoutMs} ms`);
      await this.arrival(remainingMs);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The items of one multiget reply, by their declared lengths; throws on anything else. */
function parseItems(reply: Buffer): Map<string, string> {
  const items = new Map<string, string>();
  let offset = 0;
  for (;;) {
    const lineEnd = reply.indexOf('\r\n', offset, 'latin1');
    if (lineEnd < 0) throw new Error(`reply cut off at byte ${offset}`);
    const line = reply.toString('latin1', offset, lineEnd);
    if (line === 'END') {
      if (lineEnd + 2 !== reply.length) throw new Error(`${reply.length - lineEnd - 2} bytes after END`);
      return items;
    }
    const header = /^VALUE (\S+) (\d+) (\d+)$/.exec(line);
    if (header === null) throw new Error(`unexpected line ${JSON.stringify(line)} after ${items.size} items`);
    const dataStart = lineEnd + 2;
    const bytes = Number(header[3]);
    if (reply.toString('latin1', dataStart + bytes, dataStart + bytes + 2) !== '\r\n') throw new Error(`value of ${header[1]} not followed by CRLF`);
    if (items.has(header[1])) throw new Error(`${header[1]} answered twice`);
    items.set(header[1], reply.toString('latin1', dataStart, dataStart + bytes));
    offset = dataStart + bytes + 2;
  }
}

/** Sends a get of `indexes` and checks that exactly the preloaded ones come back, with their values. */
async function checkedMultiget(client: Client, indexes: readonly number[]): Promise<number> {
  client.send(`get ${indexes.map(keyOf).join(' ')}\r\n`);
  const items = parseItems(await client.takeUntilEndsWith('END\r\n'));
  const expected = indexes.filter((index) => index < preloadedKeys);
  for (const index of expected) {
    if (items.get(keyOf(index)) !== valueOf(index)) throw new Error(`${keyOf(index)}: ${String(items.get(keyOf(index)))}`);
  }
  if (items.size !== expected.length) throw new Error(`${items.size} items for ${expected.length} stored keys`);
  return items.size;
}

/** Resident memory of a process, from /proc. */
function residentBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** Stores keys [from, to) over one connection, pipelined, and checks every answer. */
async function preload(port: number, from: number, to: number): Promise<void> {
  const client = await Client.connect(port);
  try {
    const batch = 500;
    for (let start = from; start < to; start += batch) {
      const end = Math.min(to, start + batch);
      let request = '';
      for (let index = start; index < end; index++) request += `set ${keyOf(index)} 0 0 ${valueOf(index).length}\r\n${valueOf(index)}\r\n`;
      client.send(request);
      const lines = await client.takeLines(end - start);
      const wrong = lines.find((line) => line !== 'STORED');
      if (wrong !== undefined) throw new Error(`a preload set answered ${wrong}`);
    }
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-capacity-'));
  nodes = await startCluster({ baseDir: workDir, size: 3, args });
  const perNode = Math.ceil(preloadedKeys / nodes.length);
  await Promise.all(nodes.map((node, index) => preload(node.memcachePort, index * perNode, Math.min(preloadedKeys, (index + 1) * perNode))));
}, 180_000);

afterAll(async () => {
  await killStartedKai();
  fs.rmSync(workDir, { recursive: true, force: true });
});

const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, index) => from + index);

test('a get of 1,030 keys answers every key', async () => {
  const client = await Client.connect(nodes[0].memcachePort);
  try {
    expect(await checkedMultiget(client, range(0, 1030))).toBe(1030);
  } finally {
    client.close();
  }
}, 180_000);

test("repeated 3,000-key gets leave another client's requests answered", async () => {
  const wide = await Client.connect(nodes[1].memcachePort);
  const other = await Client.connect(nodes[1].memcachePort);
  try {
    let wideDone = 0;
    const wideLoop = (async () => {
      for (let round = 0; round < 5; round++) {
        expect(await checkedMultiget(wide, range(round * 3000, 3000))).toBe(3000);
        wideDone++;
      }
    })();
    let otherDone = 0;
    for (let index = 0; index < 100; index++) {
      const key = 500 + index;
      expect(await checkedMultiget(other, [key])).toBe(1);
      otherDone++;
    }
    await wideLoop;
    expect(wideDone).toBe(5);
    expect(otherDone).toBe(100);
  } finally {
    wide.close();
    other.close();
  }
}, 300_000);

test('a get of 100,000 keys answers every stored one', async () => {
  const client = await Client.connect(nodes[2].memcachePort);
  try {
    // The first 20,000 are stored, the other 80,000 never written.
    expect(await checkedMultiget(client, range(0, 100_000))).toBe(preloadedKeys);
  } finally {
    client.close();
  }
}, 300_000);

test('16 connections of 256 pipelined sets each are all stored', async () => {
  const node = nodes[0];
  const connections = await Promise.all(range(0, 16).map(() => Client.connect(node.memcachePort)));
  try {
    const base = 200_000;
    const answers = await Promise.all(
      connections.map(async (client, connection) => {
        let request = '';
        for (let index = 0; index < 256; index++) {
          const key = base + connection * 256 + index;
          request += `set ${keyOf(key)} 0 0 ${valueOf(key).length}\r\n${valueOf(key)}\r\n`;
        }
        client.send(request);
        return client.takeLines(256);
      }),
    );
    const notStored = answers.flat().filter((line) => line !== 'STORED');
    expect(notStored).toEqual([]);
    // Every one reads back, through another node.
    const reader = await Client.connect(nodes[1].memcachePort);
    try {
      const keys = range(base, 16 * 256);
      reader.send(`get ${keys.map(keyOf).join(' ')}\r\n`);
      const items = parseItems(await reader.takeUntilEndsWith('END\r\n'));
      expect(items.size).toBe(keys.length);
      for (const key of keys) expect(items.get(keyOf(key))).toBe(valueOf(key));
    } finally {
      reader.close();
    }
  } finally {
    for (const client of connections) client.close();
  }
}, 180_000);

test('a client that never reads its wide multigets holds up neither the node nor other clients', async () => {
  const node = nodes[0];
  const unread = await Client.connect(node.memcachePort);
  const other = await Client.connect(node.memcachePort);
  try {
    // 40 gets of 5,000 keys: about 1.1 GB of replies if all were made.
    const line = `get ${range(0, 5000).map(keyOf).join(' ')}\r\n`;
    for (let index = 0; index < 40; index++) unread.send(line);
    unread.socket.pause();
    for (let index = 0; index < 200; index++) {
      expect(await checkedMultiget(other, [index * 7])).toBe(1);
    }
    // Other nodes' clients are served too.
    const elsewhere = await Client.connect(nodes[1].memcachePort);
    try {
      expect(await checkedMultiget(elsewhere, range(100, 50))).toBe(50);
    } finally {
      elsewhere.close();
    }
    for (const each of nodes) expect(residentBytes(each.pid)).toBeLessThan(residentBytesMax);
  } finally {
    unread.close();
    other.close();
  }
  // Once the client is gone, the node serves as before.
  const after = await Client.connect(node.memcachePort);
  try {
    expect(await checkedMultiget(after, range(0, 2000))).toBe(2000);
  } finally {
    after.close();
  }
}, 180_000);
