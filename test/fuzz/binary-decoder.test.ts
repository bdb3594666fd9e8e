// Seeded fuzzing of the binary protocol decoder: no throw, no loop, no buffering past its body cap, and the same events in any chunking.
import { BinaryStatus } from '../../src/errors';
import { keyBytesMax } from '../../src/protocol/command';
import { headerBytes } from '../../src/protocol/binary/constants';
import { BinaryDecoder, bodyBytesMaxFor, isKnownOpcode, type BinaryEvent } from '../../src/protocol/binary/decoder';
import { binaryStream, type BinaryInputOptions } from './binary-inputs';
import { meaningfulNoise, randomBytes, splitRandomly } from './bytes';
import { forEachSeed, fuzzTestTimeoutMs, replaying } from './fuzz-run';
import { decodeChunks, describeInput, expectSameDecoding, type Decoding, type DecodingRules } from './push-decoding';

const limits = { valueBytesMax: 4096 };
const inputOptions: BinaryInputOptions = { valueBytesMax: limits.valueBytesMax };
/** Fixed seeds CI runs; each seed runs casesPerSeed inputs. */
const seeds = [1, 2, 3, 4, 5, 6];
const casesPerSeed = 150;
const noiseCasesPerSeed = 60;
const statuses: ReadonlySet<number> = new Set(Object.values(BinaryStatus));

/**
 * What the decoder may hold once it has decoded what it can: part of a header, or a body short of
 * its declared length, which the header check has held to the body cap.
 */
const bufferedBytesMax = Math.max(headerBytes - 1, bodyBytesMaxFor(limits.valueBytesMax) - 1);

/** Which outcomes the inputs reached, so a generator that stopped producing valid packets is noticed. */
const reached = new Set<string>();

function checkEvent(event: BinaryEvent): void {
  reached.add(event.kind === 'error' ? `error ${event.status}` : event.kind);
  if (event.kind === 'error') {
    if (!statuses.has(event.status)) throw new Error(`status ${event.status} is not one of BinaryStatus`);
    if (event.header === undefined && !event.close) throw new Error('a stream that is not requests is answered without closing');
    return;
  }
  const { header, extras, key, value } = event.request;
  if (!isKnownOpcode(header.opcode)) throw new Error(`a ${event.kind} of unknown opcode ${header.opcode}`);
  if (extras.length !== header.extrasLength || key.length !== header.keyLength) {
    throw new Error(`extras ${extras.length} and key ${key.length} bytes where the header says ${header.extrasLength} and ${header.keyLength}`);
  }
  if (key.length > keyBytesMax) throw new Error(`a key of ${key.length} bytes`);
  const valueBytes = header.bodyLength - header.extrasLength - header.keyLength;
  if (event.kind === 'request' && value.length !== valueBytes) {
    throw new Error(`a value of ${value.length} bytes where the header says ${valueBytes}`);
  }
  if (event.kind === 'valueTooLarge' && (value.length !== 0 || valueBytes <= limits.valueBytesMax)) {
    throw new Error(`valueTooLarge for a value of ${valueBytes} bytes`);
  }
}

const rules: DecodingRules<BinaryEvent> = {
  bufferedBytesMax,
  flood: Buffer.alloc(bufferedBytesMax + headerBytes, 0),
  closes: (event) => event.kind === 'error' && event.close,
  checkEvent,
};

function decode(chunks: readonly Buffer[]): Decoding {
  const decoder = new BinaryDecoder(limits);
  const underTest = { push: (chunk: Buffer) => decoder.push(chunk), next: () => decoder.next(), bufferedBytes: () => decoder.bufferedBytes() };
  return decodeChunks(underTest, chunks, rules);
}

function expectChunkingIndependent(input: Buffer, chunks: readonly Buffer[]): void {
  expectSameDecoding(decode(chunks), decode([input]), `${chunks.length} chunks of ${describeInput(input)}`);
}

test(
  'structure-aware streams of packets, valid and mutated, truncated and garbled, in random chunks',
  async () => {
    // Proves no packet stream makes the decoder throw, loop or buffer past its cap, and chunking changes no outcome.
    await forEachSeed({ name: 'binary decoder', seeds }, (random) => {
      for (let index = 0; index < casesPerSeed; index++) {
        const input = binaryStream(random, inputOptions);
        expectChunkingIndependent(input, splitRandomly(random, input));
      }
    });
    if (!replaying()) {
      for (const outcome of ['request', 'valueTooLarge', `error ${BinaryStatus.unknownCommand}`, `error ${BinaryStatus.invalidArguments}`]) {
        expect(reached).toContain(outcome);
      }
    }
  },
  fuzzTestTimeoutMs(20_000),
);

test(
  'random bytes after a request magic byte, and noise, in random chunks',
  async () => {
    // Proves a header of random fields is judged before its body is buffered, whatever it declares.
    await forEachSeed({ name: 'binary decoder noise', seeds }, (random) => {
      for (let index = 0; index < noiseCasesPerSeed; index++) {
        const length = random.int(0, random.pick([24, 64, 5000]));
        const noise = random.chance(0.5) ? randomBytes(random, length) : meaningfulNoise(random, length);
        const input = Buffer.concat([Buffer.from([0x80]), noise]);
        expectChunkingIndependent(input, splitRandomly(random, input));
      }
    });
  },
  fuzzTestTimeoutMs(20_000),
);
