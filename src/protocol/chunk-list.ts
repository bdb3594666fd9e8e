/**
 * The bytes a connection has received and not yet consumed, kept as the list of chunks they
 * arrived in with a read cursor. Nothing is re-concatenated on arrival: a line or a value is copied
 * out once, when it is complete. A scan for a delimiter resumes where the previous one stopped, so
 * a line that trickles in byte by byte is scanned once in total, not once per byte.
 */
import { assert } from '../errors';

/** Chunks at most this long are copied into a shared staging buffer instead of being kept whole. */
export const coalescedChunkBytesMax = 512;
/** Size of a staging buffer: tiny reads cost one copy each, not one Buffer object each. */
export const stagingBufferBytes = 16 * 1024;
/** Consumed chunk slots are dropped from the list once this many have piled up at its front. */
const consumedSlotsCompactMin = 64;

export class ChunkList {
  private chunks: Buffer[] = [];
  /** Index of the chunk the cursor is in, and the cursor's offset inside it. */
  private head = 0;
  private headOffset = 0;
  private unreadBytes = 0;

  /** Where the last scan stopped: bytes from the cursor already known not to hold the byte. */
  private scannedBytes = 0;
  private scanChunk = 0;
  private scanOffset = 0;

  /** Backing store of the last chunk when it was built from small reads, and how full it is. */
  private staging: Buffer | undefined;
  private stagingStart = 0;
  private stagingFill = 0;

  get byteLength(): number {
    return this.unreadBytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.unreadBytes += chunk.length;
    if (chunk.length > coalescedChunkBytesMax) {
      this.staging = undefined;
      this.chunks.push(chunk);
      return;
    }
    if (this.staging && this.stagingFill + chunk.length <= this.staging.length) {
      chunk.copy(this.staging, this.stagingFill);
      this.stagingFill += chunk.length;
      // The view only grows at its end, so offsets into it held by the cursor stay valid.
      this.chunks[this.chunks.length - 1] = this.staging.subarray(this.stagingStart, this.stagingFill);
      return;
    }
    this.staging = Buffer.allocUnsafe(stagingBufferBytes);
    chunk.copy(this.staging, 0);
    this.stagingStart = 0;
    this.stagingFill = chunk.length;
    this.chunks.push(this.staging.subarray(0, this.stagingFill));
  }

  /**
   * The distance from the cursor to the first `byte`, or -1 when no unread byte is `byte`.
   * Continues the previous scan; consuming bytes restarts it.
   */
  scanFor(byte: number): number {
    while (this.scanChunk < this.chunks.length) {
      const chunk = this.chunks[this.scanChunk];
      const found = chunk.indexOf(byte, this.scanOffset);
      if (found >= 0) {
        return this.scannedBytes + (found - this.scanOffset);
      }
      this.scannedBytes += chunk.length - this.scanOffset;
      // Stay on the last chunk: a staging chunk may still grow in place.
      if (this.scanChunk === this.chunks.length - 1) {
        this.scanOffset = chunk.length;
        return -1;
      }
      this.scanChunk++;
      this.scanOffset = 0;
    }
    return -1;
  }

  /** The byte `index` bytes past the cursor. */
  byteAt(index: number): number {
    assert(index >= 0 && index < this.unreadBytes, 'byteAt within the unread bytes');
    let chunkIndex = this.head;
    let offset = this.headOffset + index;
    while (offset >= this.chunks[chunkIndex].length) {
      offset -= this.chunks[chunkIndex].length;
      chunkIndex++;
    }
    return this.chunks[chunkIndex][offset];
  }

  /** Copies the next `byteCount` bytes into a new Buffer and moves the cursor past them. */
  take(byteCount: number): Buffer {
    assert(byteCount >= 0 && byteCount <= this.unreadBytes, 'take within the unread bytes');
    const out = Buffer.allocUnsafe(byteCount);
    let written = 0;
    while (written < byteCount) {
      const chunk = this.chunks[this.head];
      const copied = chunk.copy(out, written, this.headOffset, Math.min(chunk.length, this.headOffset + byteCount - written));
      written += copied;
      this.advance(copied);
    }
    this.afterConsume(byteCount);
    return out;
  }

  /** Moves the cursor past the next `byteCount` bytes without copying them. */
  skip(byteCount: number): void {
    assert(byteCount >= 0 && byteCount <= this.unreadBytes, 'skip within the unread bytes');
    let left = byteCount;
    while (left > 0) {
      const step = Math.min(left, this.chunks[this.head].length - this.headOffset);
      this.advance(step);
      left -= step;
    }
    this.afterConsume(byteCount);
  }

  /** Drops every unread byte. */
  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.headOffset = 0;
    this.unreadBytes = 0;
    this.staging = undefined;
    this.resetScan();
  }

  private advance(byteCount: number): void {
    this.headOffset += byteCount;
    const chunk = this.chunks[this.head];
    // A fully read chunk is released, unless it is the staging chunk that later reads extend.
    if (this.headOffset === chunk.length && !(this.staging && this.head === this.chunks.length - 1)) {
      this.head++;
      this.headOffset = 0;
    }
  }

  private afterConsume(byteCount: number): void {
    this.unreadBytes -= byteCount;
    if (this.head >= consumedSlotsCompactMin && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    if (this.unreadBytes === 0 && !this.staging) {
      this.chunks = [];
      this.head = 0;
      this.headOffset = 0;
    }
    this.resetScan();
  }

  private resetScan(): void {
    this.scannedBytes = 0;
    this.scanChunk = this.head;
    this.scanOffset = this.headOffset;
  }
}
