// One load-generating thread: a set of memcache connections (text or binary protocol), each with
// exactly one request in flight (closed loop). The main thread drives the phases
// (preload, warm-up, measurement, stop) so that all workers measure the same window; the workload
// (workloads.ts) decides what each connection sends and which reply each request must get.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { build, encodeIntoCompressedBase64 } from 'hdr-histogram-js';
import { ChunkReader } from './chunk-reader';
import type { ErrorKind, ReplyOutcome } from './replies';
import type { Address, WireProtocol } from './targets';
import { ConnectionRequests, Operation, Request, Workload, WorkloadName, operations, workloads } from './workloads';

// The reply parsers' tests import them from here.
export { ChunkReader } from './chunk-reader';
export {
  keyName,
  parseBinaryReply,
  parseGetReply,
  parseSetReply,
  replyLineBytesMax,
  valueFor,
  valuesPerGetMax,
  type ErrorKind,
} from './replies';

export interface WorkerConfig {
  workerIndex: number;
  workload: WorkloadName;
  protocol: WireProtocol;
  addresses: Address[];
  connectionCount: number;
  // Global index of this worker's first connection, so connections spread evenly over addresses.
  firstConnectionIndex: number;
  // Connections over all workers.
  connectionsTotal: number;
  keyCount: number;
  valueBytes: number;
  getRatio: number;
  // This worker preloads keys [preloadKeyStart, preloadKeyEnd).
  preloadKeyStart: number;
  preloadKeyEnd: number;
  requestTimeoutMs: number;
}

export type ControlMessage = { type: 'warmup' } | { type: 'measure' } | { type: 'stop' };

export interface WorkerResult {
  // Requests completed in the measurement window, by operation.
  operations: Record<Operation, number>;
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

interface PendingRequest {
  request: Request;
  startedMs: number;
}

export const errorSamplesMax = 5;
export const reconnectAttemptsMax = 20;
const reconnectDelayMs = 100;
const watchdogIntervalMs = 250;
// Latencies are recorded in microseconds; anything above a minute is clamped.
const latencyUsMax = 60_000_000;

function zeroPerOperation(): Record<Operation, number> {
  return Object.fromEntries(operations.map((operation) => [operation, 0])) as Record<Operation, number>;
}

class LoadWorker {
  private phase: Phase = 'preload';
  private readonly connections: LoadConnection[] = [];
  private readonly histogram = build({ useWebAssembly: false, numberOfSignificantValueDigits: 3 });
  private readonly errors: Record<ErrorKind, number> = { protocol: 0, value: 0, connection: 0, timeout: 0 };
  private readonly errorSamples: string[] = [];
  private readonly workload: Workload;
  private readonly operationCounts = zeroPerOperation();
  private misses = 0;
  private siblingReplies = 0;
  private preloadErrors = 0;
  private measureStartMs = 0;
  private measureEndMs = 0;
  private watchdog: NodeJS.Timeout | undefined;

  constructor(readonly config: WorkerConfig) {
    const description = workloads.get(config.workload);
    if (description === undefined) throw new Error(`unknown workload "${config.workload}"`);
    this.workload = description.create(config);
  }

  parseReply(reader: ChunkReader, pending: PendingRequest): ReplyOutcome {
    return this.workload.parseReply(reader, pending.request);
  }

  start(): void {
    const { connectionCount, connectionsTotal, preloadKeyStart, preloadKeyEnd, addresses, firstConnectionIndex } = this.config;
    for (let index = 0; index < connectionCount; index++) {
      // Each connection preloads a contiguous share of this worker's key range.
      const share = (preloadKeyEnd - preloadKeyStart) / connectionCount;
      const start = preloadKeyStart + Math.floor(share * index);
      const end = index === connectionCount - 1 ? preloadKeyEnd : preloadKeyStart + Math.floor(share * (index + 1));
      const connectionIndex = firstConnectionIndex + index;
      const address = addresses[connectionIndex % addresses.length];
      const requests = this.workload.connectionRequests({ preloadKeyStart: start, preloadKeyEnd: end, connectionIndex, connectionsTotal });
      const connection = new LoadConnection(this, address, requests);
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

  recordReply(pending: PendingRequest, outcome: ReplyOutcome, completedMs: number): void {
    if (outcome.kind === 'error') {
      this.recordError(outcome.errorKind, outcome.message);
      if (this.phase === 'preload') this.preloadErrors++;
      return;
    }
    if (this.phase !== 'measure') return;
    this.operationCounts[pending.request.operation]++;
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
      operations: this.operationCounts,
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
  private reconnectAttempts = 0;
  preloadDone = false;
  lost = false;

  constructor(
    private readonly worker: LoadWorker,
    private readonly address: Address,
    private readonly requests: ConnectionRequests,
  ) {}

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
    let request: Request | undefined;
    if (phase === 'preload') {
      request = this.requests.nextPreload();
      if (request === undefined) {
        this.preloadDone = true;
        this.worker.checkPreloadDone();
        return;
      }
    } else if (phase === 'warmup' || phase === 'measure') {
      request = this.requests.next();
    } else {
      return;
    }
    this.pending = { request, startedMs: performance.now() };
    this.socket.write(request.bytes);
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
    this.requests.restart();
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
