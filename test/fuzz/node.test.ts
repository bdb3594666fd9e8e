// A real node fed fuzzed client-port and internal-port input stays up, bounded in memory, and serving well-behaved clients correctly.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import Memcached from 'memcached';
import * as memjs from 'memjs';
import { FrameDecoder, frameBytesMaxFor } from '../../src/rpc/frames';
import { requestMagic } from '../../src/protocol/binary/constants';
import { BinaryDecoder } from '../../src/protocol/binary/decoder';
import { TextDecoder } from '../../src/protocol/text/decoder';
import type { SimRandom } from '../sim/random';
import { killStartedKai, startKai, type KaiProcess } from '../support/process';
import { loopbackHost } from '../support/servers';
import { binaryStream, flushOpcodes } from './binary-inputs';
import { randomBytes, splitRandomly } from './bytes';
import { destructiveRequestTypes, frameStream, validFrameStream } from './frame-inputs';
import { forEachSeed, fuzzTestTimeoutMs } from './fuzz-run';
import { describeInput } from './push-decoding';
import { textStream } from './text-inputs';

/** Small values keep each fuzzed stream small, so a run sends many of them. */
const valueBytesMax = 64 * 1024;
const siblingsMax = 25;
/** As the node computes it (server/compose.ts). */
const frameBytesMax = frameBytesMaxFor(valueBytesMax, siblingsMax + 1);
/** Fixed seeds CI runs; each seed opens connectionsPerSeed fuzzed connections. */
const seeds = [1, 2, 3];
const connectionsPerSeed = 36;
/** Fuzzed connections open at once, beside the well-behaved client. */
const concurrentConnections = 3;
/** The node's item cache (--cache-size), small so that a cache filling up is not mistaken for input held. */
const cacheBytes = 8 * 1024 * 1024;
/**
 * The node's resident memory may not pass this. An idle node holds about 70 MB; what a fuzzed
 * connection can make it hold is bounded by the caps (a frame of 64 KiB values, 26 versions, is
 * under 2 MB), so three at once, with replies and the item cache, stay far below.
 */
const residentBytesMax = 200 * 1024 * 1024;
/** How long the node may take to close a connection after the client's FIN, under a loaded machine. */
const closeTimeoutMs = 15_000;
/** memjs counts its timeout in seconds. */
const wellBehavedTimeoutSeconds = 15;
/** Writes of one fuzzed stream: its random chunks are merged down to this many. */
const writesPerConnectionMax = 48;
/** Keys of the well-behaved client start with this; no fuzzed input may name one. */
const wellBehavedPrefix = 'wb:';
/** Keys of fuzzed input start with this, so they never name a well-behaved client's key. */
const fuzzPrefix = 'fz';
/**
 * Keys each side draws from: a long run then stores a bounded amount of data, so the memory bound
 * measures what input makes the node hold, not how much data it was given to keep.
 */
const keyCount = 512;

let dataDir: string;
let kai: KaiProcess;
let client: memjs.Client;
/** A text protocol client beside memjs, so both of the client port's protocols are seen served. */
let textClient: Memcached;
const quietLogger = { log: (): void => undefined };

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-fuzz-'));
  kai = await startKai({
    dataDir,
    args: [
      ...['--log-level', 'error'],
      ...['--max-item-size', String(valueBytesMax), '--siblings-max', String(siblingsMax), '--cache-size', String(cacheBytes)],
    ],
  });
  client = memjs.Client.create(`${loopbackHost}:${kai.memcachePort}`, { retries: 0, timeout: wellBehavedTimeoutSeconds, logger: quietLogger });
  textClient = new Memcached(`${loopbackHost}:${kai.memcachePort}`, { retries: 0, timeout: wellBehavedTimeoutSeconds * 1000 });
});

afterAll(async () => {
  client?.close();
  textClient?.end();
  await killStartedKai();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** How the node ended, once it has; set from its exit promise. */
let nodeExit: string | undefined;

/** The node's resident memory, or undefined once it has exited (a zombie has no VmRSS). */
function residentBytes(pid: number): number | undefined {
  if (nodeExit !== undefined) return undefined;
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** How long a failed client waits to learn whether the node exited, before saying it did not. */
const exitNoticeWaitMs = 2_000;

/** ", the node having exited ..." when the node has exited or does so within a short wait; else nothing. */
async function exitNote(): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, exitNoticeWaitMs);
  });
  await Promise.race([kai.exited, waited]);
  clearTimeout(timer);
  return nodeExit === undefined ? '' : `, the node having exited (${nodeExit}); stderr: ${kai.stderr().slice(-2000)}`;
}

type Port = 'text' | 'binary' | 'internal';

function namesWellBehavedKey(key: Buffer): boolean {
  return key.subarray(0, wellBehavedPrefix.length).toString('latin1') === wellBehavedPrefix;
}

/** Every Buffer in a decoded message, for the filter below. */
function buffersIn(value: unknown, found: Buffer[] = []): Buffer[] {
  if (Buffer.isBuffer(value)) found.push(value);
  else if (Array.isArray(value)) value.forEach((item) => buffersIn(item, found));
  else if (value !== null && typeof value === 'object') Object.values(value).forEach((item) => buffersIn(item, found));
  return found;
}

/**
 * Whether the node would read, in `input`, something that removes or names data of the
 * well-behaved client: flush_all, a flush packet, a flushAll or membership message, or one of its
 * keys. Garbling can make one by chance; such an input is drawn again. Decoding is independent of
 * chunking, so what the node reads is what these decoders read.
 */
function touchesOthers(port: Port, input: Buffer): boolean {
  const eventsMax = 2 * input.length + 4;
  if (port === 'internal') {
    const decoder = new FrameDecoder({ frameBytesMax });
    decoder.push(input);
    for (let count = 0; count < eventsMax; count++) {
      const event = decoder.next();
      if (event.kind !== 'envelope') return false;
      if (event.envelope.kind === 'request' && destructiveRequestTypes.has(event.envelope.body.type)) return true;
      if (buffersIn(event.envelope).some(namesWellBehavedKey)) return true;
    }
    return false;
  }
  if (input[0] === requestMagic) {
    const decoder = new BinaryDecoder({ valueBytesMax });
    decoder.push(input);
    for (let event = decoder.next(), count = 0; event !== undefined && count < eventsMax; event = decoder.next(), count++) {
      if (event.kind === 'error') continue;
      if (flushOpcodes.has(event.request.header.opcode) || namesWellBehavedKey(event.request.key)) return true;
    }
    return false;
  }
  const decoder = new TextDecoder({ valueBytesMax });
  decoder.push(input);
  for (let event = decoder.next(), count = 0; event !== undefined && count < eventsMax; event = decoder.next(), count++) {
    if (event.kind !== 'command') continue;
    const command = event.command;
    if (command.op === 'flush_all') return true;
    const keys = 'keys' in command ? command.keys : 'key' in command ? [command.key] : [];
    if (keys.some(namesWellBehavedKey)) return true;
  }
  return false;
}

/** Draws of one input before giving up: the filter rejects only what garbling makes by chance. */
const drawsMax = 100;

function fuzzedInput(random: SimRandom, port: Port): Buffer {
  const options = { harmlessOnly: true, keyPrefix: fuzzPrefix, keyCount, valueBytesMax };
  for (let draw = 0; draw < drawsMax; draw++) {
    let input: Buffer;
    if (port === 'internal') {
      input = random.chance(0.5) ? validFrameStream(random, frameBytesMax, options) : frameStream(random, frameBytesMax, options);
    }
    else if (port === 'binary') input = binaryStream(random, options);
    else input = random.chance(0.9) ? textStream(random, options) : randomBytes(random, random.int(1, 4096));
    if (!touchesOthers(port, input)) return input;
  }
  throw new Error(`${drawsMax} ${port} inputs in a row would touch other clients' data: the generator's harmless mode is broken`);
}

/** The chunks merged down to at most `writesMax` writes, keeping their boundaries otherwise. */
function mergeChunks(chunks: readonly Buffer[], writesMax: number): Buffer[] {
  const perWrite = Math.ceil(chunks.length / writesMax);
  const writes: Buffer[] = [];
  for (let index = 0; index < chunks.length; index += perWrite) writes.push(Buffer.concat(chunks.slice(index, index + perWrite)));
  return writes;
}

/**
 * Sends the input in its chunks, each in its own turn of the event loop so they leave as separate
 * segments, then half-closes and waits until the node closes the connection. Replies are read and
 * dropped, so the node is never held up by a client that does not read.
 */
async function sendFuzzed(port: number, chunks: readonly Buffer[]): Promise<void> {
  const socket = net.connect({ port, host: loopbackHost });
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => resolve());
  });
  for (const chunk of mergeChunks(chunks, writesPerConnectionMax)) {
    if (socket.destroyed) break;
    socket.write(chunk);
    await new Promise((resolve) => setImmediate(resolve));
  }
  socket.end();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), closeTimeoutMs);
  });
  const outcome = await Promise.race([closed, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    socket.destroy();
    throw new Error(`the node did not close the connection within ${closeTimeoutMs} ms of the client's FIN`);
  }
}

/** The well-behaved client's writes, by key, to be read back. */
const written = new Map<string, Buffer>();

function promisify<T>(call: (callback: (error: unknown, result: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((error, result) => (error ? reject(error) : resolve(result))));
}

/** One write and one read of a random earlier write, through memjs or the text client by turns. */
async function wellBehavedRound(random: SimRandom, round: number): Promise<void> {
  const key = `${wellBehavedPrefix}${random.int(0, keyCount - 1)}`;
  if (round % 2 === 0) {
    const value = randomBytes(random, random.int(0, 2048));
    expect(await client.set(key, value, { expires: 0 })).toBe(true);
    written.set(key, value);
  } else {
    // The text client sends strings; hex keeps the bytes the same both ways.
    const text = randomBytes(random, random.int(0, 1024)).toString('hex');
    await promisify((callback) => textClient.set(key, text, 0, callback));
    expect(await promisify((callback) => textClient.get(key, callback))).toBe(text.length === 0 ? '' : text);
    written.set(key, Buffer.from(text));
  }
  const [checked] = random.shuffle([...written.keys()]);
  const read = await client.get(checked);
  const expected = written.get(checked) ?? Buffer.alloc(0);
  if (!(read.value ?? Buffer.alloc(0)).equals(expected)) {
    throw new Error(`the well-behaved client read ${read.value?.length ?? 'nothing'} bytes for ${checked}, not the ${expected.length} it wrote`);
  }
}

test(
  'fuzzed clients and peers leave the node up, bounded in memory, and serving a well-behaved client',
  async () => {
    // Proves no fuzzed input on either port crashes or hangs the node, grows it past its bound, or disturbs another client.
    void kai.exited.then((status) => {
      nodeExit = `code ${status.code}, signal ${status.signal}`;
    });
    let residentMax = residentBytes(kai.pid) ?? 0;
    await forEachSeed({ name: 'node', seeds }, async (random) => {
      const ports: Port[] = ['text', 'binary', 'internal'];
      let fuzzersRunning = concurrentConnections;
      // Each connection stream draws from its own generator, so what it sends does not depend on timing.
      const fuzzing = async (workerRandom: SimRandom): Promise<void> => {
        for (let opened = 0; opened < connectionsPerSeed / concurrentConnections; opened++) {
          const port = workerRandom.pick(ports);
          const input = fuzzedInput(workerRandom, port);
          const chunks = splitRandomly(workerRandom, input);
          try {
            await sendFuzzed(port === 'internal' ? kai.port : kai.memcachePort, chunks);
          } catch (error) {
            throw new Error(`${port} input ${describeInput(input)}: ${error instanceof Error ? error.message : String(error)}`);
          }
          const resident = residentBytes(kai.pid);
          if (resident === undefined) {
            throw new Error(`the node exited (${nodeExit ?? 'no VmRSS'}) after ${port} input ${describeInput(input)}; stderr: ${kai.stderr().slice(-2000)}`);
          }
          residentMax = Math.max(residentMax, resident);
          if (residentMax > residentBytesMax) throw new Error(`the node holds ${residentMax} bytes, over ${residentBytesMax}`);
        }
      };
      const serving = async (servingRandom: SimRandom): Promise<void> => {
        try {
          for (let round = 0; fuzzersRunning > 0; round++) await wellBehavedRound(servingRandom, round);
        } catch (error) {
          throw new Error(`the well-behaved client failed${await exitNote()}: ${error instanceof Error ? error.message : String(error)}`);
        }
      };
      const fuzzers = Array.from({ length: concurrentConnections }, () =>
        fuzzing(random.fork()).finally(() => {
          fuzzersRunning--;
        }),
      );
      await Promise.all([...fuzzers, serving(random.fork())]);
    });
    // Every value the well-behaved client wrote reads back as it was written.
    for (const [key, value] of written) {
      const read = await client.get(key);
      expect([key, (read.value ?? Buffer.alloc(0)).toString('hex')]).toEqual([key, value.toString('hex')]);
    }
    console.log(`kai fuzz node: ${written.size} well-behaved keys read back; resident memory peaked at ${Math.round(residentMax / 2 ** 20)} MiB`);
    expect((await kai.stop()).code).toBe(0);
  },
  fuzzTestTimeoutMs(120_000),
);
