/**
 * Drives a push decoder (push a chunk, pull events until it needs more) over chunked input and
 * checks the properties every decoder of kai must have whatever the input: it never throws, it
 * ends every pull within a bounded number of events, it holds no more than its documented cap
 * once it has consumed what it can, and after a closing event it holds nothing and says nothing.
 */

export interface DecoderUnderTest<E> {
  push(chunk: Buffer): void;
  /** The next event, or undefined when the decoder needs more bytes or has stopped. */
  next(): E | undefined;
  bufferedBytes(): number;
}

export interface DecodingRules<E> {
  /** Bytes the decoder may hold once it has produced every event it can. */
  readonly bufferedBytesMax: number;
  /** Whether the event ends the stream (the connection closes after it). */
  readonly closes: (event: E) => boolean;
  /** Checks one event's own invariants; throws naming the problem. */
  readonly checkEvent?: (event: E) => void;
  /**
   * Pushed after the input: more bytes than the cap, none of which completes anything the
   * decoder waits for. A decoder that accepted a declared length over its cap, or a line it should
   * have given up on, then holds more than the cap, which the input alone is rarely long enough to show.
   */
  readonly flood: Buffer;
}

export interface Decoding {
  /** The events, as plain values comparable with deep equality. */
  readonly events: unknown[];
  readonly closed: boolean;
  /** Bytes held after the last chunk. */
  readonly bufferedBytes: number;
}

/**
 * Every event costs the decoder at least one byte of input, save one: a refused text `set`
 * yields a command at once and its error once its block is gone. So a decoder that yields more
 * than two events per byte, and a few for the end, is looping.
 */
function eventsMaxFor(inputBytes: number): number {
  return 2 * inputBytes + 4;
}

export function decodeChunks<E>(decoder: DecoderUnderTest<E>, input: readonly Buffer[], rules: DecodingRules<E>): Decoding {
  const chunks = [...input, rules.flood];
  const inputBytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const eventsMax = eventsMaxFor(inputBytes);
  const events: unknown[] = [];
  let closed = false;
  chunks.forEach((chunk, chunkIndex) => {
    decoder.push(chunk);
    for (;;) {
      const event = decoder.next();
      if (event === undefined) break;
      if (closed) throw new Error(`an event after the closing one, at chunk ${chunkIndex}: ${describe(plain(event))}`);
      if (events.length >= eventsMax) throw new Error(`more than ${eventsMax} events from ${inputBytes} bytes: the decoder loops`);
      rules.checkEvent?.(event);
      events.push(plain(event));
      if (rules.closes(event)) closed = true;
    }
    const held = decoder.bufferedBytes();
    if (closed && held !== 0) throw new Error(`${held} bytes held after the closing event`);
    if (held > rules.bufferedBytesMax) {
      throw new Error(`${held} bytes held after chunk ${chunkIndex} of ${chunks.length}, over the cap of ${rules.bufferedBytesMax}`);
    }
  });
  return { events, closed, bufferedBytes: decoder.bufferedBytes() };
}

/** Buffers as hex, bigints and errors as text: a form deep equality and messages can use. */
export function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `<${value.toString('hex')}>`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Error) return { error: value.name, code: (value as { code?: unknown }).code, message: value.message };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([field, item]) => [field, plain(item)]));
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

/** A short rendering for failure messages. */
export function describe(value: unknown, charactersMax = 300): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > charactersMax ? `${text.slice(0, charactersMax)}...` : text;
}

/** Throws naming the first difference when two decodings differ. */
export function expectSameDecoding(actual: Decoding, expected: Decoding, what: string): void {
  const sameEnd = actual.closed === expected.closed && actual.bufferedBytes === expected.bufferedBytes;
  if (sameEnd && JSON.stringify(actual.events) === JSON.stringify(expected.events)) return;
  const length = Math.max(actual.events.length, expected.events.length);
  for (let index = 0; index < length; index++) {
    const left = describe(actual.events[index], Infinity);
    const right = describe(expected.events[index], Infinity);
    if (left !== right) {
      throw new Error(`${what}: event ${index} differs: ${describe(actual.events[index])} instead of ${describe(expected.events[index])}`);
    }
  }
  if (actual.closed !== expected.closed) throw new Error(`${what}: closed ${actual.closed} instead of ${expected.closed}`);
  if (actual.bufferedBytes !== expected.bufferedBytes) {
    throw new Error(`${what}: ${actual.bufferedBytes} bytes held at the end instead of ${expected.bufferedBytes}`);
  }
}

/** Renders an input for a failure message: its length and its first bytes. */
export function describeInput(input: Buffer, bytesShown = 160): string {
  const shown = input.subarray(0, bytesShown).toString('latin1');
  return `${input.length} bytes: ${JSON.stringify(shown)}${input.length > bytesShown ? '...' : ''}`;
}
