/**
 * The operations a SqliteStore commits, and the messages between the store and what commits them
 * (a worker thread, sqlite-commit-worker.ts, or the store's own thread under simulation). A batch
 * of operations travels as one ArrayBuffer that is transferred, not copied: cloning each Buffer
 * instead would copy the whole allocation behind it (a pool slab, msgpackr's output buffer).
 */
import { assert } from '../errors';

export interface Counts {
  items: number;
  bytes: number;
}

/** Hints a node holds for one target node, committed. */
export interface HintCount {
  readonly target: string;
  readonly count: number;
  readonly bytes: number;
}

export interface WriteOperation {
  readonly kind: 'write';
  readonly key: Buffer;
  readonly bucket: number;
  /** When no version of the record is live any more; NULL while one never ends. */
  readonly deadAtMs: number | null;
  /** NULL when the record holds only tombstones. */
  readonly itemBytes: number | null;
  readonly versionsBlob: Buffer;
  /** StoredRecord.actor; NULL for none. */
  readonly actor: string | null;
  /** The node this copy stands in for (a fallback's write), recorded as a hint; NULL for none. */
  readonly hintTarget: string | null;
  /**
   * Only if the key still has a row when the batch commits: a merge into a copy that exists, which
   * must not re-create one a delete queued before it removed.
   */
  readonly onlyIfPresent: boolean;
}

export interface RemoveAllOperation {
  readonly kind: 'removeAll';
}

/** Deletes up to `limit` records dead since `deadBeforeMs` and holding no hint, unconditionally. */
export interface PurgeOperation {
  readonly kind: 'purge';
  readonly deadBeforeMs: number;
  readonly limit: number;
}

/** A key and the record hash it had when a decision about it was taken. */
export interface KeyAtHash {
  readonly key: Buffer;
  /** -1 stands for "the key holds no record". */
  readonly expectedHash: number;
}

/** Deletes each record that still has its expected hash and holds no hint (reaping). */
export interface ReapOperation {
  readonly kind: 'reap';
  readonly items: readonly KeyAtHash[];
}

/** Leaves records that still have their expected hash alone until `untilMs`. */
export interface DeferReapOperation {
  readonly kind: 'deferReap';
  readonly items: readonly KeyAtHash[];
  readonly untilMs: number;
}

/**
 * Hints for `target` delivered: each is removed if the record still has the hash that was sent
 * (a later write keeps it, to be delivered again), and with `dropCopy` the record goes too once
 * no hint for another target holds it: the copy was only kept for its primaries.
 */
export interface HandedOffOperation {
  readonly kind: 'handedOff';
  readonly target: string;
  readonly dropCopy: boolean;
  readonly items: readonly KeyAtHash[];
}

export type CommitOperation =
  | WriteOperation
  | RemoveAllOperation
  | PurgeOperation
  | ReapOperation
  | DeferReapOperation
  | HandedOffOperation;

export interface CommitWorkerData {
  readonly filePath: string;
  readonly busyTimeoutMs: number;
  readonly buckets: number;
  /** fsync the WAL on every commit (durability 'power'), not only at checkpoints. */
  readonly syncEveryCommit: boolean;
}

export interface CommitRequest {
  readonly type: 'commit';
  readonly batchId: number;
  /** The batch's operations, as encodeBatch wrote them. */
  readonly operations: ArrayBuffer;
}

/** Asks the worker to close its connection and exit once it has answered every commit. */
export interface CloseRequest {
  readonly type: 'close';
}

export type CommitWorkerRequest = CommitRequest | CloseRequest;

export interface CommittedReply {
  readonly type: 'committed';
  readonly batchId: number;
  /** The committed counts after the batch. */
  readonly counts: Counts;
  /** Every target whose hints the batch changed, with its counts after it. */
  readonly hintCounts: readonly HintCount[];
  /** For each operation, in order: how many records or hints it removed or changed (writes: 1). */
  readonly outcomes: readonly number[];
  /** Keys whose record the batch deleted: their cached copies must go. */
  readonly removedKeyIds: readonly string[];
  /** Hash tree changes, flat: bucket, segment, old hash XOR new hash, for each changed record. */
  readonly treeChanges: readonly number[];
  /** Whether the batch held a removeAll: the tree starts from empty before treeChanges apply. */
  readonly treeCleared: boolean;
  /** Fallback copies the batch's handedOff operations removed. */
  readonly copiesDropped: number;
}

/** The batch's transaction rolled back: none of its operations took effect. */
export interface FailedReply {
  readonly type: 'failed';
  readonly batchId: number;
  readonly message: string;
  /** SQLite's code for the error (SQLITE_FULL, SQLITE_IOERR, ...), when it gave one. */
  readonly code?: string;
}

export type CommitWorkerReply = CommittedReply | FailedReply;

/** The map key of a record key: latin1 maps each byte to one char, so distinct keys stay distinct. */
export function keyIdOf(key: Buffer): string {
  return key.toString('latin1');
}

const kindCodes = { write: 1, removeAll: 2, purge: 3, reap: 4, deferReap: 5, handedOff: 6 } as const;
/** Bits of a write's flags field. */
const writeFlags = { hinted: 1, onlyIfPresent: 2, withActor: 4 } as const;
/** Stands for NULL in the numeric fields, none of which may be negative otherwise. */
const nullNumber = -1;

/** Writes fields into one growing buffer; `finish` hands over an exact-size ArrayBuffer. */
class BatchWriter {
  private buffer: Buffer;
  private offset = 0;

  constructor(bytesExpected: number) {
    this.buffer = Buffer.allocUnsafeSlow(bytesExpected);
  }

  number(value: number): void {
    this.ensure(8);
    this.offset = this.buffer.writeDoubleLE(value, this.offset);
  }

  kind(code: number): void {
    this.ensure(1);
    this.offset = this.buffer.writeUInt8(code, this.offset);
  }

  blob(value: Buffer): void {
    this.ensure(4 + value.length);
    this.offset = this.buffer.writeUInt32LE(value.length, this.offset);
    this.offset += value.copy(this.buffer, this.offset);
  }

  text(value: string): void {
    this.blob(Buffer.from(value, 'utf8'));
  }

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buffer.length * 2, this.offset + bytes));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }

  finish(): ArrayBuffer {
    const whole = this.buffer.buffer as ArrayBuffer;
    if (this.offset === this.buffer.length && this.buffer.byteOffset === 0 && whole.byteLength === this.offset) return whole;
    // An exact-size copy: the receiver may keep views of it, so it must not carry slack.
    const out = new ArrayBuffer(this.offset);
    this.buffer.copy(Buffer.from(out), 0, 0, this.offset);
    return out;
  }
}

/** Reads what BatchWriter wrote; blobs are views of the buffer, not copies. */
class BatchReader {
  private offset = 0;
  private readonly bytes: Buffer;

  constructor(encoded: ArrayBuffer) {
    this.bytes = Buffer.from(encoded);
  }

  get done(): boolean {
    return this.offset >= this.bytes.length;
  }

  kind(): number {
    return this.bytes.readUInt8(this.offset++);
  }

  number(): number {
    const value = this.bytes.readDoubleLE(this.offset);
    this.offset += 8;
    return value;
  }

  nullableNumber(): number | null {
    const value = this.number();
    return value === nullNumber ? null : value;
  }

  blob(): Buffer {
    const length = this.bytes.readUInt32LE(this.offset);
    const start = this.offset + 4;
    assert(start + length <= this.bytes.length, 'an encoded blob ends inside its batch');
    this.offset = start + length;
    return this.bytes.subarray(start, start + length);
  }

  text(): string {
    return this.blob().toString('utf8');
  }
}

const numberBytes = 8;
const lengthBytes = 4;

function keysAtHashBytes(items: readonly KeyAtHash[]): number {
  let bytes = numberBytes;
  for (const item of items) bytes += lengthBytes + item.key.length + numberBytes;
  return bytes;
}

/** What encodeBatch writes for the operation, so the batch is laid out in one exact allocation. */
function encodedBytesOf(operation: CommitOperation): number {
  const textBytes = (text: string): number => lengthBytes + Buffer.byteLength(text, 'utf8');
  switch (operation.kind) {
    case 'write':
      return (
        1 +
        4 * numberBytes +
        2 * lengthBytes +
        operation.key.length +
        operation.versionsBlob.length +
        (operation.hintTarget === null ? 0 : textBytes(operation.hintTarget)) +
        (operation.actor === null ? 0 : textBytes(operation.actor))
      );
    case 'removeAll':
      return 1;
    case 'purge':
      return 1 + 2 * numberBytes;
    case 'reap':
      return 1 + keysAtHashBytes(operation.items);
    case 'deferReap':
      return 1 + numberBytes + keysAtHashBytes(operation.items);
    case 'handedOff':
      return 1 + textBytes(operation.target) + numberBytes + keysAtHashBytes(operation.items);
  }
}

function writeKeysAtHash(writer: BatchWriter, items: readonly KeyAtHash[]): void {
  writer.number(items.length);
  for (const item of items) {
    writer.blob(item.key);
    writer.number(item.expectedHash);
  }
}

function readKeysAtHash(reader: BatchReader): KeyAtHash[] {
  const count = reader.number();
  const items: KeyAtHash[] = [];
  for (let index = 0; index < count; index++) items.push({ key: reader.blob(), expectedHash: reader.number() });
  return items;
}

/** Lays the operations out in one exact-size ArrayBuffer, little-endian. */
export function encodeBatch(operations: readonly CommitOperation[]): ArrayBuffer {
  let bytesExpected = 0;
  for (const operation of operations) bytesExpected += encodedBytesOf(operation);
  const writer = new BatchWriter(bytesExpected);
  for (const operation of operations) {
    writer.kind(kindCodes[operation.kind]);
    switch (operation.kind) {
      case 'write':
        writer.number(operation.bucket);
        writer.number(operation.deadAtMs ?? nullNumber);
        writer.number(operation.itemBytes ?? nullNumber);
        writer.blob(operation.key);
        writer.blob(operation.versionsBlob);
        writer.number(
          (operation.hintTarget === null ? 0 : writeFlags.hinted) |
            (operation.onlyIfPresent ? writeFlags.onlyIfPresent : 0) |
            (operation.actor === null ? 0 : writeFlags.withActor),
        );
        if (operation.hintTarget !== null) writer.text(operation.hintTarget);
        if (operation.actor !== null) writer.text(operation.actor);
        break;
      case 'removeAll':
        break;
      case 'purge':
        writer.number(operation.deadBeforeMs);
        writer.number(operation.limit);
        break;
      case 'reap':
        writeKeysAtHash(writer, operation.items);
        break;
      case 'deferReap':
        writer.number(operation.untilMs);
        writeKeysAtHash(writer, operation.items);
        break;
      case 'handedOff':
        writer.text(operation.target);
        writer.number(operation.dropCopy ? 1 : 0);
        writeKeysAtHash(writer, operation.items);
        break;
    }
  }
  return writer.finish();
}

/** Reads what encodeBatch wrote; keys and blobs are views of `encoded`, not copies. */
export function decodeBatch(encoded: ArrayBuffer): CommitOperation[] {
  const reader = new BatchReader(encoded);
  const operations: CommitOperation[] = [];
  while (!reader.done) {
    const code = reader.kind();
    switch (code) {
      case kindCodes.write: {
        const bucket = reader.number();
        const deadAtMs = reader.nullableNumber();
        const itemBytes = reader.nullableNumber();
        const key = reader.blob();
        const versionsBlob = reader.blob();
        const flags = reader.number();
        const hintTarget = (flags & writeFlags.hinted) !== 0 ? reader.text() : null;
        const onlyIfPresent = (flags & writeFlags.onlyIfPresent) !== 0;
        const actor = (flags & writeFlags.withActor) !== 0 ? reader.text() : null;
        operations.push({ kind: 'write', key, bucket, deadAtMs, itemBytes, versionsBlob, actor, hintTarget, onlyIfPresent });
        break;
      }
      case kindCodes.removeAll:
        operations.push({ kind: 'removeAll' });
        break;
      case kindCodes.purge:
        operations.push({ kind: 'purge', deadBeforeMs: reader.number(), limit: reader.number() });
        break;
      case kindCodes.reap:
        operations.push({ kind: 'reap', items: readKeysAtHash(reader) });
        break;
      case kindCodes.deferReap: {
        const untilMs = reader.number();
        operations.push({ kind: 'deferReap', untilMs, items: readKeysAtHash(reader) });
        break;
      }
      case kindCodes.handedOff: {
        const target = reader.text();
        const dropCopy = reader.number() === 1;
        operations.push({ kind: 'handedOff', target, dropCopy, items: readKeysAtHash(reader) });
        break;
      }
      default:
        assert(false, `an encoded operation has a known kind, not ${code}`);
    }
  }
  return operations;
}
