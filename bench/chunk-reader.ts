// The bytes received on one load connection, kept as a list of chunks with a cursor into the first:
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
