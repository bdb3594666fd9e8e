/**
 * Messages between a SqliteStore and its commit worker (sqlite-commit-worker.ts). A batch of
 * operations travels as one ArrayBuffer that is transferred, not copied: cloning each Buffer
 * instead would copy the whole allocation behind it (a pool slab, msgpackr's output buffer).
 */
import { assert } from '../errors';

export interface Counts {
  items: number;
  bytes: number;
}

export interface WriteOperation {
  readonly kind: 'write';
  readonly key: Buffer;
  readonly bucket: number;
  /** NULL in the table when the record never expires. */
  readonly purgeAtMs: number | null;
  /** NULL when the record holds only tombstones. */
  readonly itemBytes: number | null;
  readonly versionsBlob: Buffer;
}

export interface RemoveAllOperation {
  readonly kind: 'removeAll';
}

export interface PurgeOperation {
  readonly kind: 'purge';
  readonly nowMs: number;
  readonly limit: number;
}

export type CommitOperation = WriteOperation | RemoveAllOperation | PurgeOperation;

export interface CommitWorkerData {
  readonly filePath: string;
  readonly busyTimeoutMs: number;
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
  /** For each purge of the batch, in order, the keyIds it deleted. */
  readonly purgedKeyIds: string[][];
}

/** The batch's transaction rolled back: none of its operations took effect. */
export interface FailedReply {
  readonly type: 'failed';
  readonly batchId: number;
  readonly message: string;
}

export type CommitWorkerReply = CommittedReply | FailedReply;

/** The map key of a record key: latin1 maps each byte to one char, so distinct keys stay distinct. */
export function keyIdOf(key: Buffer): string {
  return key.toString('latin1');
}

const kindCodes = { write: 1, removeAll: 2, purge: 3 } as const;

/** kind, bucket, purgeAtMs, itemBytes, key length, blob length. */
const writeHeaderBytes = 1 + 8 + 8 + 8 + 4 + 4;
/** kind, nowMs, limit. */
const purgeBytes = 1 + 8 + 8;
/** Stands for NULL in the numeric fields, none of which may be negative otherwise. */
const nullNumber = -1;

function encodedBytesOf(operation: CommitOperation): number {
  switch (operation.kind) {
    case 'write':
      return writeHeaderBytes + operation.key.length + operation.versionsBlob.length;
    case 'removeAll':
      return 1;
    case 'purge':
      return purgeBytes;
  }
}

/** Lays the operations out in one exact-size ArrayBuffer, little-endian. */
export function encodeBatch(operations: readonly CommitOperation[]): ArrayBuffer {
  let totalBytes = 0;
  for (const operation of operations) totalBytes += encodedBytesOf(operation);
  const bytes = Buffer.from(new ArrayBuffer(totalBytes));
  let offset = 0;
  for (const operation of operations) {
    offset = bytes.writeUInt8(kindCodes[operation.kind], offset);
    if (operation.kind === 'write') {
      offset = bytes.writeDoubleLE(operation.bucket, offset);
      offset = bytes.writeDoubleLE(operation.purgeAtMs ?? nullNumber, offset);
      offset = bytes.writeDoubleLE(operation.itemBytes ?? nullNumber, offset);
      offset = bytes.writeUInt32LE(operation.key.length, offset);
      offset = bytes.writeUInt32LE(operation.versionsBlob.length, offset);
      offset += operation.key.copy(bytes, offset);
      offset += operation.versionsBlob.copy(bytes, offset);
    } else if (operation.kind === 'purge') {
      offset = bytes.writeDoubleLE(operation.nowMs, offset);
      offset = bytes.writeDoubleLE(operation.limit, offset);
    }
  }
  assert(offset === totalBytes, 'an encoded batch fills its buffer exactly');
  return bytes.buffer as ArrayBuffer;
}

/** Reads what encodeBatch wrote; keys and blobs are views of `encoded`, not copies. */
export function decodeBatch(encoded: ArrayBuffer): CommitOperation[] {
  const bytes = Buffer.from(encoded);
  const operations: CommitOperation[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const kindCode = bytes.readUInt8(offset);
    offset += 1;
    if (kindCode === kindCodes.removeAll) {
      operations.push({ kind: 'removeAll' });
    } else if (kindCode === kindCodes.purge) {
      operations.push({ kind: 'purge', nowMs: bytes.readDoubleLE(offset), limit: bytes.readDoubleLE(offset + 8) });
      offset += purgeBytes - 1;
    } else {
      assert(kindCode === kindCodes.write, 'an encoded operation has a known kind');
      const purgeAtMs = bytes.readDoubleLE(offset + 8);
      const itemBytes = bytes.readDoubleLE(offset + 16);
      const keyBytes = bytes.readUInt32LE(offset + 24);
      const blobBytes = bytes.readUInt32LE(offset + 28);
      const keyStart = offset + writeHeaderBytes - 1;
      const blobStart = keyStart + keyBytes;
      operations.push({
        kind: 'write',
        bucket: bytes.readDoubleLE(offset),
        purgeAtMs: purgeAtMs === nullNumber ? null : purgeAtMs,
        itemBytes: itemBytes === nullNumber ? null : itemBytes,
        key: bytes.subarray(keyStart, blobStart),
        versionsBlob: bytes.subarray(blobStart, blobStart + blobBytes),
      });
      offset = blobStart + blobBytes;
    }
  }
  assert(offset === bytes.length, 'an encoded batch ends on an operation boundary');
  return operations;
}
