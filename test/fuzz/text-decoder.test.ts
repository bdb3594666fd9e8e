// Seeded fuzzing of the text protocol decoder: no throw, no loop, no buffering past its caps, and the same events in any chunking.
import { errorRegistry, KaiError } from '../../src/errors';
import { keyBytesMax, type Command } from '../../src/protocol/command';
import { TextDecoder, lineBytesWithoutNewlineMax, type TextEvent } from '../../src/protocol/text/decoder';
import { meaningfulNoise, randomBytes, splitRandomly } from './bytes';
import { forEachSeed, fuzzTestTimeoutMs, replaying } from './fuzz-run';
import { decodeChunks, describeInput, expectSameDecoding, type Decoding, type DecodingRules } from './push-decoding';
import { textStream, type TextInputOptions } from './text-inputs';

const limits = { valueBytesMax: 4096, multigetLineBytesMax: 8192 };
const inputOptions: TextInputOptions = { valueBytesMax: limits.valueBytesMax };
/** Fixed seeds CI runs; each seed runs casesPerSeed inputs. */
const seeds = [1, 2, 3, 4, 5, 6];
const casesPerSeed = 120;
/** Noise cases are longer and often split byte by byte, so fewer of them fit the same time. */
const noiseCasesPerSeed = 60;
const uint64Max = 2n ** 64n - 1n;

/**
 * What the decoder may hold once it has decoded what it can: an incomplete line of at most 2048
 * bytes (a multiget line up to its cap), or a data block short of its announced length, which is
 * at most the value limit plus its CRLF, less the byte still missing.
 */
const bufferedBytesMax = Math.max(lineBytesWithoutNewlineMax, limits.multigetLineBytesMax, limits.valueBytesMax + 1);

function checkCommand(command: Command): void {
  const keys = 'keys' in command ? command.keys : 'key' in command ? [command.key] : [];
  for (const key of keys) {
    if (key.length === 0 || key.length > keyBytesMax) throw new Error(`a ${command.op} with a key of ${key.length} bytes`);
  }
  if (command.op === 'store') {
    if (command.value.length > limits.valueBytesMax) throw new Error(`a store of ${command.value.length} bytes, over the limit`);
    if (!Number.isInteger(command.flags) || command.flags < 0 || command.flags > 0xffffffff) throw new Error(`flags ${command.flags}`);
    if (command.casUnique < 0n || command.casUnique > uint64Max) throw new Error(`cas unique ${command.casUnique}`);
  }
  if (command.op === 'arith' && (command.delta < 0n || command.delta > uint64Max)) throw new Error(`delta ${command.delta}`);
  if ('exptime' in command && !(Number.isInteger(command.exptime) && Math.abs(command.exptime) <= 2 ** 31)) {
    throw new Error(`exptime ${command.exptime}`);
  }
}

/** Which outcomes the inputs reached, so a generator that stopped producing valid commands is noticed. */
const reached = new Set<string>();

const rules: DecodingRules<TextEvent> = {
  bufferedBytesMax,
  flood: Buffer.alloc(bufferedBytesMax + 3, 0x78),
  closes: (event) => (event.kind === 'error' && event.close) || (event.kind === 'command' && event.command.op === 'quit'),
  checkEvent: (event) => {
    reached.add(event.kind === 'command' ? event.command.op : event.error.code);
    if (event.kind === 'command') return checkCommand(event.command);
    if (!(event.error instanceof KaiError) || !(event.error.code in errorRegistry)) {
      throw new Error(`an error outside the registry: ${String(event.error)}`);
    }
    // An over-long line always closes the connection: reading past it would buffer without bound.
    if (event.error.code === 'KAI_LINE_TOO_LONG' && !event.close) throw new Error('KAI_LINE_TOO_LONG without closing');
  },
};

function decode(chunks: readonly Buffer[]): Decoding {
  const decoder = new TextDecoder(limits);
  const underTest = { push: (chunk: Buffer) => decoder.push(chunk), next: () => decoder.next(), bufferedBytes: () => decoder.bufferedBytes() };
  return decodeChunks(underTest, chunks, rules);
}

/** Whether the input holds more than 2048 bytes without a newline, which memcached may close on early. */
function holdsLongLine(input: Buffer): boolean {
  let start = 0;
  for (;;) {
    const newlineAt = input.indexOf(0x0a, start);
    const end = newlineAt < 0 ? input.length : newlineAt;
    if (end - start > lineBytesWithoutNewlineMax) return true;
    if (newlineAt < 0) return false;
    start = newlineAt + 1;
  }
}

/**
 * Delivered in chunks, the input decodes as it does whole, with one exception memcached has too:
 * a line not yet complete after 2048 bytes closes the connection (unless it is a multiget), so a
 * long line that would have been read whole may close it early. Then what came before is the same.
 */
function expectChunkingIndependent(input: Buffer, chunks: readonly Buffer[]): void {
  const whole = decode([input]);
  const chunked = decode(chunks);
  const what = `${chunks.length} chunks of ${describeInput(input)}`;
  const last = chunked.events[chunked.events.length - 1] as { error?: { code?: string } } | undefined;
  const closedEarly = chunked.closed && last?.error?.code === 'KAI_LINE_TOO_LONG' && holdsLongLine(input);
  if (!closedEarly) return expectSameDecoding(chunked, whole, what);
  const before = { events: chunked.events.slice(0, -1), closed: false, bufferedBytes: 0 };
  expectSameDecoding(before, { events: whole.events.slice(0, before.events.length), closed: false, bufferedBytes: 0 }, what);
}

test(
  'structure-aware streams of commands, valid and mutated, truncated and garbled, in random chunks',
  async () => {
    // Proves no command stream makes the decoder throw, loop or over-buffer, and chunking changes no outcome.
    await forEachSeed({ name: 'text decoder', seeds }, (random) => {
      for (let index = 0; index < casesPerSeed; index++) {
        const input = textStream(random, inputOptions);
        expectChunkingIndependent(input, splitRandomly(random, input));
      }
    });
    if (!replaying()) {
      const outcomes = ['store', 'get', 'refuse_store', 'KAI_BAD_DATA_CHUNK', 'KAI_UNKNOWN_COMMAND', 'KAI_LINE_TOO_LONG', 'KAI_BAD_COMMAND_LINE'];
      for (const outcome of outcomes) expect(reached).toContain(outcome);
    }
  },
  fuzzTestTimeoutMs(20_000),
);

test(
  'random bytes and line noise, in random chunks',
  async () => {
    // Proves input that is not the protocol at all is refused as values, never a crash or unbounded buffering.
    await forEachSeed({ name: 'text decoder noise', seeds }, (random) => {
      for (let index = 0; index < noiseCasesPerSeed; index++) {
        const length = random.int(0, random.pick([16, 512, 5000]));
        const input = random.chance(0.5) ? randomBytes(random, length) : meaningfulNoise(random, length);
        expectChunkingIndependent(input, splitRandomly(random, input));
      }
    });
  },
  fuzzTestTimeoutMs(20_000),
);
