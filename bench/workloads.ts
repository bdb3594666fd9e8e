// The request mixes the load generator runs. A workload builds its request bytes once per load
// thread and says which reply each request must get; each connection draws its requests through
// its own ConnectionRequests, which keeps whatever order the workload needs (a delete follows the
// set of its key on the same connection).

import type { ChunkReader } from './chunk-reader';
import {
  ReplyOutcome,
  binaryGetOpcode,
  binaryRequestHeader,
  binarySetExtrasBytes,
  binarySetOpcode,
  keyName,
  parseBinaryReply,
  parseCounterGetReply,
  parseCounterReply,
  parseDeleteReply,
  parseGetReply,
  parseSetReply,
  valueFor,
} from './replies';
import type { WireProtocol } from './targets';

export type Operation = 'get' | 'set' | 'incr' | 'decr' | 'delete';
export const operations: readonly Operation[] = ['get', 'set', 'incr', 'decr', 'delete'];

export interface Request {
  operation: Operation;
  keyIndex: number;
  bytes: Buffer;
}

export interface ConnectionKeys {
  // Keys this connection sets before the load starts: [preloadKeyStart, preloadKeyEnd).
  preloadKeyStart: number;
  preloadKeyEnd: number;
  // This connection's place among all the connections of the run, for a workload that gives each
  // connection keys no other connection touches.
  connectionIndex: number;
  connectionsTotal: number;
}

export interface ConnectionRequests {
  // The next preload request, or undefined once this connection's share is preloaded.
  nextPreload(): Request | undefined;
  next(): Request;
  // The connection was replaced after an error: whether its last request was served is unknown.
  restart(): void;
}

export interface WorkloadSettings {
  protocol: WireProtocol;
  keyCount: number;
  valueBytes: number;
  getRatio: number;
}

export interface Workload {
  connectionRequests(keys: ConnectionKeys): ConnectionRequests;
  parseReply(reader: ChunkReader, request: Request): ReplyOutcome;
}

export type WorkloadName = 'get-set' | 'counters' | 'deletes';

// What the main thread knows of a workload before any load thread starts.
export interface WorkloadDescription {
  protocols: readonly WireProtocol[];
  keysDefault: number;
  // Whether --get-ratio means anything to it.
  usesGetRatio: boolean;
  describe(settings: Pick<WorkloadSettings, 'getRatio' | 'valueBytes'>): string;
  create(settings: WorkloadSettings): Workload;
}

// Every counter starts here, so that a decr by 1 never floors at 0 in any run this bench can make.
export const counterInitialValue = '5000000000000';
const crlf = Buffer.from('\r\n');

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}

function randomKey(keyCount: number): number {
  return Math.floor(Math.random() * keyCount);
}

function textLines(keyCount: number, line: (key: string) => string): Buffer[] {
  return Array.from({ length: keyCount }, (_, keyIndex) => Buffer.from(line(keyName(keyIndex))));
}

// Preloads the connection's share of the keys, then sends whatever `next` draws.
function preloadThenRandom(keys: ConnectionKeys, preload: (keyIndex: number) => Request, next: () => Request): ConnectionRequests {
  let cursor = keys.preloadKeyStart;
  return {
    nextPreload: () => (cursor < keys.preloadKeyEnd ? preload(cursor++) : undefined),
    next,
    // Any request may follow any other on these keys: nothing to start over.
    restart: () => {},
  };
}

function parseTextReply(reader: ChunkReader, request: Request, parseGet: (reader: ChunkReader, keyIndex: number) => ReplyOutcome): ReplyOutcome {
  switch (request.operation) {
    case 'get':
      return parseGet(reader, request.keyIndex);
    case 'set':
      return parseSetReply(reader);
    case 'delete':
      return parseDeleteReply(reader);
    case 'incr':
    case 'decr':
      return parseCounterReply(reader, request.operation);
  }
}

// Gets and sets of keys chosen uniformly; every set of a key writes valueFor(key), so each get
// hit is checked byte for byte. Text or binary protocol.
function createGetSet(settings: WorkloadSettings): Workload {
  const { keyCount, valueBytes, getRatio } = settings;
  const binary = settings.protocol === 'binary';
  const getRequests: Buffer[] = [];
  const setHeaders: Buffer[] = [];
  for (let keyIndex = 0; keyIndex < keyCount; keyIndex++) {
    const key = keyName(keyIndex);
    getRequests.push(binary ? binaryRequestHeader(binaryGetOpcode, key, 0, 0) : Buffer.from(`get ${key}\r\n`));
    setHeaders.push(
      binary ? binaryRequestHeader(binarySetOpcode, key, binarySetExtrasBytes, valueBytes) : Buffer.from(`set ${key} 0 0 ${valueBytes}\r\n`),
    );
  }
  // A text value is followed by CRLF; a binary one by nothing.
  const valueTrailer = binary ? [] : [crlf];
  const setRequest = (keyIndex: number): Request => ({
    operation: 'set',
    keyIndex,
    bytes: Buffer.concat([setHeaders[keyIndex], valueFor(keyIndex, valueBytes), ...valueTrailer]),
  });
  const nextRequest = (): Request => {
    const keyIndex = randomKey(keyCount);
    return Math.random() < getRatio ? { operation: 'get', keyIndex, bytes: getRequests[keyIndex] } : setRequest(keyIndex);
  };
  return {
    connectionRequests: (keys) => preloadThenRandom(keys, setRequest, nextRequest),
    parseReply: (reader, request) =>
      binary
        ? parseBinaryReply(reader, request.operation === 'get', request.keyIndex, valueBytes)
        : parseTextReply(reader, request, (parseReader, keyIndex) => parseGetReply(parseReader, keyIndex, valueBytes)),
  };
}

// incr and decr by 1, in equal shares, and gets, on keys chosen uniformly, each preloaded with
// counterInitialValue. incr and decr must answer a number, a get one decimal number.
function createCounters(settings: WorkloadSettings): Workload {
  const { keyCount, getRatio } = settings;
  const getRequests = textLines(keyCount, (key) => `get ${key}\r\n`);
  const incrRequests = textLines(keyCount, (key) => `incr ${key} 1\r\n`);
  const decrRequests = textLines(keyCount, (key) => `decr ${key} 1\r\n`);
  const preloadRequests = textLines(keyCount, (key) => `set ${key} 0 0 ${counterInitialValue.length}\r\n${counterInitialValue}\r\n`);
  const nextRequest = (): Request => {
    const keyIndex = randomKey(keyCount);
    if (Math.random() < getRatio) return { operation: 'get', keyIndex, bytes: getRequests[keyIndex] };
    return Math.random() < 0.5
      ? { operation: 'incr', keyIndex, bytes: incrRequests[keyIndex] }
      : { operation: 'decr', keyIndex, bytes: decrRequests[keyIndex] };
  };
  const preloadRequest = (keyIndex: number): Request => ({ operation: 'set', keyIndex, bytes: preloadRequests[keyIndex] });
  return {
    connectionRequests: (keys) => preloadThenRandom(keys, preloadRequest, nextRequest),
    parseReply: (reader, request) => parseTextReply(reader, request, parseCounterGetReply),
  };
}

// Each connection sets a key, then deletes it, then moves to its next key: `DELETED` is the only
// right answer to every delete. Connection i of c owns keys i, i + c, i + 2c, ..., so no other
// connection sets or deletes them in between. Nothing is preloaded.
function createDeletes(settings: WorkloadSettings): Workload {
  const { keyCount, valueBytes } = settings;
  const setHeaders = textLines(keyCount, (key) => `set ${key} 0 0 ${valueBytes}\r\n`);
  const deleteRequests = textLines(keyCount, (key) => `delete ${key}\r\n`);
  return {
    connectionRequests: ({ connectionIndex, connectionsTotal }) => {
      if (connectionIndex >= keyCount) throw new Error(`deletes: connection ${connectionIndex} has no key of its own (${keyCount} keys)`);
      let keyIndex = connectionIndex;
      let setSent = false;
      const moveToNextKey = (): void => {
        setSent = false;
        keyIndex += connectionsTotal;
        if (keyIndex >= keyCount) keyIndex = connectionIndex;
      };
      return {
        nextPreload: () => undefined,
        next: () => {
          if (!setSent) {
            setSent = true;
            return { operation: 'set', keyIndex, bytes: Buffer.concat([setHeaders[keyIndex], valueFor(keyIndex, valueBytes), crlf]) };
          }
          const request: Request = { operation: 'delete', keyIndex, bytes: deleteRequests[keyIndex] };
          moveToNextKey();
          return request;
        },
        // A delete sent on the old connection may still be served: start again on another key.
        restart: moveToNextKey,
      };
    },
    // It sends no gets; one would be checked as get-set checks it.
    parseReply: (reader, request) => parseTextReply(reader, request, (parseReader, keyIndex) => parseGetReply(parseReader, keyIndex, valueBytes)),
  };
}

export const workloads: ReadonlyMap<WorkloadName, WorkloadDescription> = new Map<WorkloadName, WorkloadDescription>([
  [
    'get-set',
    {
      protocols: ['text', 'binary'],
      keysDefault: 10_000,
      usesGetRatio: true,
      describe: ({ getRatio, valueBytes }) => `${percent(getRatio)} get, ${percent(1 - getRatio)} set, ${valueBytes}-byte values`,
      create: createGetSet,
    },
  ],
  [
    'counters',
    {
      protocols: ['text'],
      keysDefault: 1_000,
      usesGetRatio: true,
      describe: ({ getRatio }) =>
        `${percent(getRatio)} get, ${percent((1 - getRatio) / 2)} incr, ${percent((1 - getRatio) / 2)} decr (by 1, from ${counterInitialValue})`,
      create: createCounters,
    },
  ],
  [
    'deletes',
    {
      protocols: ['text'],
      keysDefault: 10_000,
      usesGetRatio: false,
      describe: ({ valueBytes }) => `50% set, 50% delete (each key set, then deleted, by one connection), ${valueBytes}-byte values`,
      create: createDeletes,
    },
  ],
]);
