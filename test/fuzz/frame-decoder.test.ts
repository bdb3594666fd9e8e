// Seeded fuzzing of the internal frame decoder and envelope checks: no throw, no loop, no buffering past the cap, no bad envelope.
import { KaiError } from '../../src/errors';
import { FrameDecoder, envelopeProblem, frameLengthBytes, type FrameEvent } from '../../src/rpc/frames';
import { SimRandom } from '../sim/random';
import { meaningfulNoise, randomBytes, splitRandomly } from './bytes';
import { encodeEnvelopeFrame, frameStream, validEnvelope } from './frame-inputs';
import { forEachSeed, fuzzTestTimeoutMs, replaying } from './fuzz-run';
import { decodeChunks, describeInput, expectSameDecoding, plain, type Decoding, type DecodingRules } from './push-decoding';

/** Large enough for the deepest nesting the inputs draw (20,000 levels), small enough to test its cap. */
const frameBytesMax = 64 * 1024;
/** Fixed seeds CI runs; each seed runs casesPerSeed inputs. */
const seeds = [1, 2, 3, 4, 5, 6];
const casesPerSeed = 50;
const noiseCasesPerSeed = 60;

/** What the decoder may hold once it has decoded what it can: a prefix, or a body short of its declared length. */
const bufferedBytesMax = Math.max(frameLengthBytes - 1, frameBytesMax - 1);

/** FrameDecoder's events as the shared driver reads them: `needMore` is "no event", and an error is said once. */
class FrameDecoderUnderTest {
  private readonly decoder = new FrameDecoder({ frameBytesMax });
  private failed = false;

  push(chunk: Buffer): void {
    this.decoder.push(chunk);
  }

  next(): FrameEvent | undefined {
    if (this.failed) return undefined;
    const event = this.decoder.next();
    if (event.kind === 'needMore') return undefined;
    if (event.kind === 'error') this.failed = true;
    return event;
  }

  bufferedBytes(): number {
    return this.decoder.bufferedBytes;
  }
}

/** Which outcomes the inputs reached, so a generator that stopped producing valid frames is noticed. */
const reached = new Set<string>();

const rules: DecodingRules<FrameEvent> = {
  bufferedBytesMax,
  flood: Buffer.alloc(bufferedBytesMax + frameLengthBytes + 1, 0xff),
  closes: (event) => event.kind === 'error',
  checkEvent: (event) => {
    reached.add(event.kind === 'envelope' ? `${event.envelope.kind} ${event.envelope.body.type}` : event.kind);
    if (event.kind === 'error') {
      if (!(event.error instanceof KaiError) || event.error.code !== 'KAI_BAD_FRAME') {
        throw new Error(`an error other than KAI_BAD_FRAME: ${String(event.error)}`);
      }
      return;
    }
    if (event.kind !== 'envelope') throw new Error(`event ${event.kind}`);
    const problem = envelopeProblem(event.envelope);
    if (problem) throw new Error(`an envelope passed on with a problem: ${problem}`);
  },
};

/**
 * An event as it is compared: an error by its code alone. msgpackr keeps a cache of map keys
 * across calls, shared by every connection, so how it words a failure on a truncated key depends
 * on what was decoded before; that a frame fails, and how a good frame decodes, does not.
 */
function comparable(decoding: Decoding): Decoding {
  const events = decoding.events.map((event) => {
    const fields = event as { kind?: string; error?: { code?: string } };
    return fields.kind === 'error' ? { kind: 'error', code: fields.error?.code } : event;
  });
  return { ...decoding, events };
}

function decode(chunks: readonly Buffer[]): Decoding {
  return comparable(decodeChunks(new FrameDecoderUnderTest(), chunks, rules));
}

/**
 * A connection decoding valid frames while another decodes the fuzzed input, their chunks
 * interleaved: msgpack decoding keeps state between calls, so a frame that fails half-way must
 * leave nothing behind that another connection's next frame would read.
 */
class Bystander {
  private readonly decoder = new FrameDecoderUnderTest();
  private readonly expected: unknown[] = [];
  private readonly pieces: Buffer[];
  private readonly seen: unknown[] = [];

  constructor(random: SimRandom) {
    const envelopes = Array.from({ length: random.int(1, 4) }, () => validEnvelope(random));
    this.expected = envelopes.map((envelope) => plain({ kind: 'envelope', envelope }));
    this.pieces = splitRandomly(random, Buffer.concat(envelopes.map(encodeEnvelopeFrame)));
  }

  /** Pushes its next piece and decodes what it can. */
  step(): void {
    const piece = this.pieces.shift();
    if (piece) this.decoder.push(piece);
    for (let event = this.decoder.next(); event !== undefined; event = this.decoder.next()) this.seen.push(plain(event));
  }

  finish(): void {
    while (this.pieces.length > 0) this.step();
    const seen = { events: this.seen, closed: false, bufferedBytes: 0 };
    expectSameDecoding(seen, { events: this.expected, closed: false, bufferedBytes: 0 }, 'a bystander connection');
  }
}

/** Decodes the input whole, then in chunks interleaved with a bystander's, and compares. */
function expectChunkingIndependent(random: SimRandom, input: Buffer): void {
  const whole = decode([input]);
  const chunks = splitRandomly(random, input);
  const bystander = new Bystander(random);
  const fuzzed = new FrameDecoderUnderTest();
  const chunked = comparable(decodeChunks(
    {
      push: (chunk) => {
        fuzzed.push(chunk);
        bystander.step();
      },
      next: () => fuzzed.next(),
      bufferedBytes: () => fuzzed.bufferedBytes(),
    },
    chunks,
    rules,
  ));
  bystander.finish();
  expectSameDecoding(chunked, whole, `${chunks.length} chunks of ${describeInput(input)}`);
}

test(
  'structure-aware frames of every message type, mutated, with lying prefixes, truncated and garbled, in random chunks',
  async () => {
    // Proves no frame stream makes the decoder throw, loop or over-buffer, or pass on a malformed envelope, and chunking changes no outcome.
    await forEachSeed({ name: 'frame decoder', seeds }, (random) => {
      for (let index = 0; index < casesPerSeed; index++) expectChunkingIndependent(random, frameStream(random, frameBytesMax));
    });
    if (!replaying()) {
      for (const outcome of ['error', 'request replicaStore', 'reply versions']) expect(reached).toContain(outcome);
    }
  },
  fuzzTestTimeoutMs(20_000),
);

test('every envelope the generator draws as valid passes the shape checks', () => {
  // Proves the mutations start from messages kai accepts, so they probe its checks rather than miss them.
  const random = new SimRandom(1);
  for (let index = 0; index < 500; index++) {
    const envelope = validEnvelope(random);
    expect([index, envelopeProblem(envelope)]).toEqual([index, undefined]);
  }
});

test(
  'random bodies behind valid length prefixes, and noise, in random chunks',
  async () => {
    // Proves bytes that are not msgpack, or not an envelope, end the connection with KAI_BAD_FRAME and nothing else.
    await forEachSeed({ name: 'frame decoder noise', seeds }, (random) => {
      for (let index = 0; index < noiseCasesPerSeed; index++) {
        const body = random.chance(0.5) ? randomBytes(random, random.int(0, 600)) : meaningfulNoise(random, random.int(0, 600));
        const prefix = Buffer.alloc(frameLengthBytes);
        prefix.writeUInt32BE(body.length, 0);
        const input = random.chance(0.8) ? Buffer.concat([prefix, body]) : body;
        expectChunkingIndependent(random, input);
      }
    });
  },
  fuzzTestTimeoutMs(20_000),
);
