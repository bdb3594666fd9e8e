// One load-generating thread: a set of memcache connections (text or binary protocol), each with
// exactly one request in flight (closed loop). The main thread drives the phases
// (preload, warm-up, measurement, stop) so that all workers measure the same window.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { build, encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import type { Address, WireProtocol } from './targets';

export interface WorkerConfig {
  workerIndex: number;
  protocol: WireProtocol;
  addresses: Address[];
  connectionCount: number;
  // Global index of this worker's first connection, so connections spread evenly over addresses.
  firstConnectionIndex: number;
  keyCount: number;
  valueBytes: number;
  getRatio: number;
  // This worker preloads keys [preloadKeyStart, preloadKeyEnd).
  preloadKeyStart: number;
  preloadKeyEnd: number;
  requestTimeoutMs: number;
}

export type ControlMessage = { type: 'warmup' } | { type: 'measure' } | { type: 'stop' };

export type ErrorKind = 'protocol' | 'value' | 'connection' | 'timeout';

export interface WorkerResult {
  gets: number;
  sets: number;
  misses: number;
  // Gets answered with more than one VALUE line (siblings, from a cluster), every one checked.
  siblingReplies: number;
  // Errors over the whole run of the target: preload, warm-up and measurement.
  errors: Record<ErrorKind, number>;
  errorSamples: string[];
  windowMs: number;
  histogramBase64: string;
  connectionsLost: number;
}

export type WorkerMessage =
  | { type: 'ready'; preloadErrors: number }
  | { type: 'result'; result: WorkerResult }
  | { type: 'failed'; message: string };

type Phase = 'preload' | 'preloaded' | 'warmup' | 'measure' | 'stopping' | 'finished';

type ReplyOutcome =
  | { kind: 'incomplete' }
  // `values`: VALUE lines in the reply, more than one when a cluster answers siblings.
  | { kind: 'hit'; values: number }
  | { kind: 'miss' }
  | { kind: 'stored' }
  | { kind: 'error'; errorKind: ErrorKind; message: string };

interface PendingRequest {
  isGet: boolean;
  keyIndex: number;
  startedMs: number;
}

// A reply line longer than this cannot be valid for our requests: fail instead of buffering on.
export const replyLineBytesMax = 1024;
export const errorSamplesMax = 5;
// VALUE lines accepted in one get reply: kai's default siblings cap (docs/configuration.md).
export const valuesPerGetMax = 25;
export const reconnectAttemptsMax = 20;
const reconnectDelayMs = 100;
const watchdogIntervalMs = 250;
// Latencies are recorded in microseconds; anything above a minute is clamped.
const latencyUsMax = 60_000_000;

const endLine = 'END\r\n';
const storedLine = 'STORED\r\n';
const crlf = Buffer.from('\r\n');

// The bytes received on one connection, kept as a list of chunks with a cursor into the first:
// a reply split across packets is read in place, never by re-concatenating the whole buffer.
export class ChunkReader {
  private chunks: Buffer[] = [];
  private headOffset = 0;
  bufferedBytes = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  // Position (relative to the cursor) of the first '\n' at or after `from`, or -1.
  indexOfNewline(from: number): number {
    let base = 0;
    for (let chunkIndex = 0; chunkIndex < this.chunks.length; chunkIndex++) {
      const chunk = this.chunks[chunkIndex];
      const start = chunkIndex === 0 ? this.headOffset : 0;
      const length = chunk.length - start;
      if (from < base + length) {
        const found = chunk.indexOf(0x0a, start + Math.max(0, from - base));
        if (found !== -1) return base + found - start;
      }
      base += length;
    }
    return -1;
  }

  // Bytes [start, end) relative to the cursor; copies only when they span chunks.
  slice(start: number, end: number): Buffer {
    const pieces: Buffer[] = [];
    let base = 0;
    for (let chunkIndex = 0; chunkIndex < this.chunks.length && base < end; chunkIndex++) {
      const chunk = this.chunks[chunkIndex];
      const offset = chunkIndex === 0 ? this.headOffset : 0;
      const length = chunk.length - offset;
      const from = Math.max(start, base);
      const to = Math.min(end, base + length);
      if (from < to) pieces.push(chunk.subarray(offset + from - base, offset + to - base));
      base += length;
    }
    return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
  }

  consume(byteCount: number): void {
    this.bufferedBytes -= byteCount;
    let remaining = byteCount;
    while (remaining > 0) {
      const available = this.chunks[0].length - this.headOffset;
      if (remaining < available) {
        this.headOffset += remaining;
        return;
      }
      remaining -= available;
      this.chunks.shift();
      this.headOffset = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.headOffset = 0;
    this.bufferedBytes = 0;
  }
}

export function keyName(keyIndex: number): string {
  return `bench:${keyIndex}`;
}

// Every set of a key writes the same bytes, so any hit can be checked exactly.
export function valueFor(keyIndex: number, valueBytes: number): Buffer {
  return Buffer.alloc(valueBytes, `${keyName(keyIndex)}|`);
}

function protocolError(message: string): ReplyOutcome {
  return { kind: 'error', errorKind: 'protocol', message };
}

// The line starting at `offset` (relative to the cursor), with its CRLF, or null while incomplete.
function readLine(reader: ChunkReader, offset = 0): string | null {
  const newline = reader.indexOfNewline(offset);
  if (newline === -1) return null;
  return reader.slice(offset, newline + 1).toString('latin1');
}

function lineTooLong(reader: ChunkReader, offset = 0): boolean {
  return reader.indexOfNewline(offset) === -1 && reader.bufferedBytes - offset > replyLineBytesMax;
}

export function parseSetReply(reader: ChunkReader): ReplyOutcome {
  if (lineTooLong(reader)) return protocolError('reply line too long');
  const line = readLine(reader);
  if (line === null) return { kind: 'incomplete' };
  reader.consume(line.length);
  if (line === storedLine) return { kind: 'stored' };
  return protocolError(`set: unexpected reply ${JSON.stringify(line.trimEnd())}`);
}

// A get reply: END alone (a miss), or up to valuesPerGetMax VALUE blocks then END. A kai cluster
// answers one VALUE line per sibling when concurrent writes of a key met (docs/protocol.md); every
// set of a key writes the same bytes, so each sibling is checked like a single value. Nothing is
// consumed until the reply is complete or wrong.
export function parseGetReply(reader: ChunkReader, keyIndex: number, valueBytes: number): ReplyOutcome {
  let offset = 0;
  for (let values = 0; ; values++) {
    if (lineTooLong(reader, offset)) return protocolError('reply line too long');
    const line = readLine(reader, offset);
    if (line === null) return { kind: 'incomplete' };
    const lineEnd = offset + line.length;
    if (line === endLine) {
      reader.consume(lineEnd);
      return values === 0 ? { kind: 'miss' } : { kind: 'hit', values };
    }
    const header = line.endsWith('\r\n') ? line.slice(0, -2).split(' ') : [];
    if (header.length < 4 || header[0] !== 'VALUE') {
      reader.consume(lineEnd);
      return protocolError(`get: unexpected reply ${JSON.stringify(line.trimEnd())}`);
    }
    const [, key, , declaredBytes] = header;
    if (key !== keyName(keyIndex) || Number(declaredBytes) !== valueBytes) {
      reader.consume(lineEnd);
      return { kind: 'error', errorKind: 'value', message: `get ${keyName(keyIndex)}: header ${line.trimEnd()}` };
    }
    if (values === valuesPerGetMax) {
      reader.consume(lineEnd);
      return protocolError(`get: more than ${valuesPerGetMax} values`);
    }
    // The declared length equals valueBytes, checked above, so the wait below is bounded.
    const dataEnd = lineEnd + valueBytes;
    const blockEnd = dataEnd + crlf.length;
    if (reader.bufferedBytes < blockEnd) return { kind: 'incomplete' };
    const dataMatches = reader.slice(lineEnd, dataEnd).equals(valueFor(keyIndex, valueBytes));
    const terminator = reader.slice(dataEnd, blockEnd);
    if (!terminator.equals(crlf)) {
      reader.consume(blockEnd);
      return protocolError(`get: bad trailer ${JSON.stringify(terminator.toString('latin1'))}`);
    }
    if (!dataMatches) {
      reader.consume(blockEnd);
      return { kind: 'error', errorKind: 'value', message: `get ${keyName(keyIndex)}: wrong value` };
    }
    offset = blockEnd;
  }
}

// Binary protocol (memjs's framing): a GET is opcode 0x00 with the key; a SET is opcode 0x01 with
// 8 bytes of extras (flags, expiration), the key and the value. Replies are a 24-byte header
// (status at 6, body length at 8) then the body; a GET hit's body is 4 bytes of flags then the value.
const binaryHeaderBytes = 24;
const binaryGetOpcode = 0x00;
const binarySetOpcode = 0x01;
const binarySetExtrasBytes = 8;
const binaryFlagsBytes = 4;
const binaryStatusSuccess = 0;
const binaryStatusNotFound = 1;

export function binaryRequestHeader(opcode: number, key: string, extrasBytes: number, valueBytes: number): Buffer {
  const keyBytes = Buffer.from(key, 'latin1');
  const header = Buffer.alloc(binaryHeaderBytes + extrasBytes);
  header[0] = 0x80;
  header[1] = opcode;
  header.writeUInt16BE(keyBytes.length, 2);
  header[4] = extrasBytes;
  header.writeUInt32BE(extrasBytes + keyBytes.length + valueBytes, 8);
  return Buffer.concat([header, keyBytes]);
}

// One binary reply to a GET or SET of keyIndex. The declared body is checked against what the
// request can get back before any of it is waited for.
export function parseBinaryReply(reader: ChunkReader, isGet: boolean, keyIndex: number, valueBytes: number): ReplyOutcome {
  if (reader.bufferedBytes < binaryHeaderBytes) return { kind: 'incomplete' };
  const header = reader.slice(0, binaryHeaderBytes);
  const status = header.readUInt16BE(6);
  const bodyBytes = header.readUInt32BE(8);
  const expectedOpcode = isGet ? binaryGetOpcode : binarySetOpcode;
  if (header[0] !== 0x81 || header[1] !== expectedOpcode || bodyBytes > binaryFlagsBytes + valueBytes + replyLineBytesMax) {
    reader.consume(binaryHeaderBytes);
    return protocolError(`binary: unexpected header ${header.toString('hex')}`);
  }
  if (reader.bufferedBytes < binaryHeaderBytes + bodyBytes) return { kind: 'incomplete' };
  const body = reader.slice(binaryHeaderBytes, binaryHeaderBytes + bodyBytes);
  reader.consume(binaryHeaderBytes + bodyBytes);
  if (!isGet) return status === binaryStatusSuccess ? { kind: 'stored' } : protocolError(`set: status ${status}`);
  if (status === binaryStatusNotFound) return { kind: 'miss' };
  if (status !== binaryStatusSuccess || header[4] !== binaryFlagsBytes) return protocolError(`get: status ${status}`);
  if (!body.subarray(binaryFlagsBytes).equals(valueFor(keyIndex, valueBytes))) {
    return { kind: 'error', errorKind: 'value', message: `get ${keyName(keyIndex)}: wrong value` };
  }
  return { kind: 'hit', values: 1 };
}

class LoadWorker {
  private phase: Phase = 'preload';
  private readonly connections: LoadConnection[] = [];
  private readonly histogram = build({ useWebAssembly: false, numberOfSignificantValueDigits: 3 });
  private readonly errors: Record<ErrorKind, number> = { protocol: 0, value: 0, connection: 0, timeout: 0 };
  private readonly errorSamples: string[] = [];
  private readonly getRequests: Buffer[] = [];
  private readonly setHeaders: Buffer[] = [];
  private gets = 0;
  private sets = 0;
  private misses = 0;
  private siblingReplies = 0;
  private preloadErrors = 0;
  private measureStartMs = 0;
  private measureEndMs = 0;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(readonly config: WorkerConfig) {
    const binary = config.protocol === 'binary';
    for (let keyIndex = 0; keyIndex < config.keyCount; keyIndex++) {
      const key = keyName(keyIndex);
      this.getRequests.push(binary ? binaryRequestHeader(binaryGetOpcode, key, 0, 0) : Buffer.from(`get ${key}\r\n`));
      this.setHeaders.push(
        binary
          ? binaryRequestHeader(binarySetOpcode, key, binarySetExtrasBytes, config.valueBytes)
          : Buffer.from(`set ${key} 0 0 ${config.valueBytes}\r\n`),
      );
    }
    // A text value is followed by CRLF; a binary one by nothing.
    this.valueTrailer = binary ? [] : [crlf];
  }

  private readonly valueTrailer: Buffer[];

  parseReply(reader: ChunkReader, pending: PendingRequest): ReplyOutcome {
    const { protocol, valueBytes } = this.config;
    if (protocol === 'binary') return parseBinaryReply(reader, pending.isGet, pending.keyIndex, valueBytes);
    return pending.isGet ? parseGetReply(reader, pending.keyIndex, valueBytes) : parseSetReply(reader);
  }

  start(): void {
    const { connectionCount, preloadKeyStart, preloadKeyEnd, addresses, firstConnectionIndex } = this.config;
    for (let index = 0; index < connectionCount; index++) {
      // Each connection preloads a contiguous share of this worker's key range.
      const share = (preloadKeyEnd - preloadKeyStart) / connectionCount;
      const start = preloadKeyStart + Math.floor(share * index);
      const end = index === connectionCount - 1 ? preloadKeyEnd : preloadKeyStart + Math.floor(share * (index + 1));
      const address = addresses[(firstConnectionIndex + index) % addresses.length];
      const connection = new LoadConnection(this, address, start, end);
      this.connections.push(connection);
      connection.connect();
    }
    this.watchdog = setInterval(() => this.checkTimeouts(), watchdogIntervalMs);
    this.checkPreloadDone();
  }

  get currentPhase(): Phase {
    return this.phase;
  }

  onControl(message: ControlMessage): void {
    if (message.type === 'warmup') {
      this.phase = 'warmup';
      for (const connection of this.connections) connection.issueIfIdle();
    } else if (message.type === 'measure') {
      this.phase = 'measure';
      this.measureStartMs = performance.now();
    } else {
      this.measureEndMs = performance.now();
      this.phase = 'stopping';
      this.finishIfDrained();
    }
  }

  nextRequest(): { request: Buffer[]; pending: PendingRequest } {
    const keyIndex = Math.floor(Math.random() * this.config.keyCount);
    const isGet = Math.random() < this.config.getRatio;
    const request = isGet
      ? [this.getRequests[keyIndex]]
      : [this.setHeaders[keyIndex], valueFor(keyIndex, this.config.valueBytes), ...this.valueTrailer];
    return { request, pending: { isGet, keyIndex, startedMs: performance.now() } };
  }

  preloadRequest(keyIndex: number): { request: Buffer[]; pending: PendingRequest } {
    const request = [this.setHeaders[keyIndex], valueFor(keyIndex, this.config.valueBytes), ...this.valueTrailer];
    return { request, pending: { isGet: false, keyIndex, startedMs: performance.now() } };
  }

  recordReply(pending: PendingRequest, outcome: ReplyOutcome, completedMs: number): void {
    if (outcome.kind === 'error') {
      this.recordError(outcome.errorKind, outcome.message);
      if (this.phase === 'preload') this.preloadErrors++;
      return;
    }
    if (this.phase !== 'measure') return;
    if (pending.isGet) this.gets++;
    else this.sets++;
    if (outcome.kind === 'miss') this.misses++;
    if (outcome.kind === 'hit' && outcome.values > 1) this.siblingReplies++;
    const latencyUs = Math.round((completedMs - pending.startedMs) * 1000);
    this.histogram.recordValue(Math.min(Math.max(latencyUs, 1), latencyUsMax));
  }

  recordError(kind: ErrorKind, message: string): void {
    this.errors[kind]++;
    if (this.errorSamples.length < errorSamplesMax) this.errorSamples.push(`${kind}: ${message}`);
  }

  checkPreloadDone(): void {
    if (this.phase !== 'preload') return;
    if (this.connections.every((connection) => connection.preloadDone)) {
      this.phase = 'preloaded';
      post({ type: 'ready', preloadErrors: this.preloadErrors });
    }
  }

  finishIfDrained(): void {
    if (this.phase !== 'stopping') return;
    if (this.connections.some((connection) => connection.busy)) return;
    this.finish();
  }

  private checkTimeouts(): void {
    const nowMs = performance.now();
    for (const connection of this.connections) connection.checkTimeout(nowMs, this.config.requestTimeoutMs);
    this.finishIfDrained();
  }

  private finish(): void {
    this.phase = 'finished';
    clearInterval(this.watchdog);
    for (const connection of this.connections) connection.close();
    const result: WorkerResult = {
      gets: this.gets,
      sets: this.sets,
      misses: this.misses,
      siblingReplies: this.siblingReplies,
      errors: this.errors,
      errorSamples: this.errorSamples,
      windowMs: this.measureEndMs - this.measureStartMs,
      histogramBase64: encodeIntoCompressedBase64(this.histogram),
      connectionsLost: this.connections.filter((connection) => connection.lost).length,
    };
    post({ type: 'result', result });
  }
}

class LoadConnection {
  private socket: net.Socket | undefined;
  private readonly reader = new ChunkReader();
  private pending: PendingRequest | undefined;
  private preloadCursor: number;
  private reconnectAttempts = 0;
  preloadDone = false;
  lost = false;

  constructor(
    private readonly worker: LoadWorker,
    private readonly address: Address,
    preloadKeyStart: number,
    private readonly preloadKeyEnd: number,
  ) {
    this.preloadCursor = preloadKeyStart;
    this.preloadDone = preloadKeyStart >= preloadKeyEnd;
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  connect(): void {
    const socket = net.connect({ host: this.address.host, port: this.address.port, noDelay: true });
    this.socket = socket;
    socket.on('connect', () => this.issueIfIdle());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {
      // 'close' follows every 'error'; the failure is handled there once.
    });
    socket.on('close', () => {
      if (this.socket === socket) this.fail('connection', `closed by ${this.address.host}:${this.address.port}`);
    });
  }

  close(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }

  issueIfIdle(): void {
    if (this.pending !== undefined || this.socket === undefined || this.socket.connecting) return;
    const phase = this.worker.currentPhase;
    let next: { request: Buffer[]; pending: PendingRequest };
    if (phase === 'preload') {
      if (this.preloadCursor >= this.preloadKeyEnd) {
        this.preloadDone = true;
        this.worker.checkPreloadDone();
        return;
      }
      next = this.worker.preloadRequest(this.preloadCursor++);
    } else if (phase === 'warmup' || phase === 'measure') {
      next = this.worker.nextRequest();
    } else {
      return;
    }
    this.pending = next.pending;
    this.socket.write(next.request.length === 1 ? next.request[0] : Buffer.concat(next.request));
  }

  checkTimeout(nowMs: number, requestTimeoutMs: number): void {
    if (this.pending !== undefined && nowMs - this.pending.startedMs > requestTimeoutMs) {
      this.fail('timeout', `no reply within ${requestTimeoutMs} ms`);
    }
  }

  private onData(chunk: Buffer): void {
    const completedMs = performance.now();
    this.reader.push(chunk);
    const pending = this.pending;
    if (pending === undefined) {
      this.fail('protocol', 'data received with no request outstanding');
      return;
    }
    const outcome = this.worker.parseReply(this.reader, pending);
    if (outcome.kind === 'incomplete') return;
    this.pending = undefined;
    this.worker.recordReply(pending, outcome, completedMs);
    if (outcome.kind === 'error') {
      // The stream may be out of step with our requests: start over on a fresh connection.
      this.restart();
      return;
    }
    if (this.reader.bufferedBytes > 0) {
      this.fail('protocol', `${this.reader.bufferedBytes} unexpected bytes after a reply`);
      return;
    }
    this.reconnectAttempts = 0;
    this.issueIfIdle();
    this.worker.finishIfDrained();
  }

  private fail(kind: ErrorKind, message: string): void {
    const phase = this.worker.currentPhase;
    if (phase === 'finished') return;
    if (!(phase === 'stopping' && this.pending === undefined)) this.worker.recordError(kind, message);
    this.restart();
  }

  private restart(): void {
    this.pending = undefined;
    this.reader.clear();
    this.close();
    const phase = this.worker.currentPhase;
    if (phase === 'stopping' || phase === 'finished') {
      this.worker.finishIfDrained();
      return;
    }
    if (++this.reconnectAttempts > reconnectAttemptsMax) {
      this.lost = true;
      this.preloadDone = true;
      this.worker.checkPreloadDone();
      return;
    }
    setTimeout(() => {
      const currentPhase = this.worker.currentPhase;
      if (currentPhase !== 'stopping' && currentPhase !== 'finished') this.connect();
    }, reconnectDelayMs);
  }
}

function post(message: WorkerMessage): void {
  parentPort?.postMessage(message);
}

// Only run as a load thread when started with a config, so tests can import the parser.
function isWorkerConfig(data: unknown): data is WorkerConfig {
  return typeof data === 'object' && data !== null && 'firstConnectionIndex' in data;
}

if (parentPort !== null && isWorkerConfig(workerData)) {
  const worker = new LoadWorker(workerData);
  parentPort.on('message', (message: ControlMessage) => worker.onControl(message));
  try {
    worker.start();
  } catch (error) {
    post({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  }
}
