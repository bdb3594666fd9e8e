/**
 * Where the node's JSON log lines go when they go to a file or a pipe: a bounded queue written
 * out asynchronously. Logging must never hold the node. A write the disk refuses (ENOSPC, EIO)
 * drops the lines it carried, a queue past its bound drops new lines, and both are counted; the
 * next write that succeeds says how many were lost. Nothing here writes synchronously, so no exit
 * hook can spin on a full disk, as sonic-boom's flushSync does (it retries every error forever).
 */
import fs from 'node:fs';

/** Lines waiting to be written, in bytes, at most: past it new lines are dropped. */
export const logQueueBytesMax = 4 * 1024 * 1024;
/** One write takes this many bytes of queued lines at most. */
const writeBytesMax = 64 * 1024;
/** A pipe that is full (EAGAIN) is tried again after this long; its lines wait meanwhile. */
const busyRetryMs = 20;
/** After a failed write, the next waits this long: a full disk is not asked again for every line. */
const failureRetryMs = 1000;

export interface LineSinkCounters {
  readonly linesWritten: number;
  /** Lines lost: refused by the destination, over the queue bound, or written after close. */
  readonly linesDropped: number;
  /** Writes the destination failed. */
  readonly writeFailures: number;
  /** The error code of the last failed write (ENOSPC, EIO, ...). */
  readonly lastFailure: string | undefined;
}

interface Chunk {
  readonly bytes: Buffer;
  readonly lines: number;
  offset: number;
}

export class LineSink {
  private queue: string[] = [];
  private queuedBytes = 0;
  private chunk: Chunk | undefined;
  private waiting: NodeJS.Timeout | undefined;
  private closing = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private linesWritten = 0;
  private linesDropped = 0;
  /** Dropped lines not yet reported by a line in the log itself. */
  private linesDroppedUnreported = 0;
  private writeFailures = 0;
  private lastFailure: string | undefined;

  private constructor(
    private readonly fd: number,
    private readonly ownsFd: boolean,
    private readonly queueBytesMax: number,
  ) {}

  /**
   * Appends to `file`, or writes to stdout when it is absent. The file is opened here, at once, so
   * a log file that cannot be opened stops the node from starting rather than losing every line.
   */
  static open(file: string | undefined, queueBytesMax = logQueueBytesMax): LineSink {
    if (file === undefined) return new LineSink(1, false, queueBytesMax);
    return new LineSink(fs.openSync(file, 'a'), true, queueBytesMax);
  }

  /** pino's destination interface: one serialized line, newline included. Never blocks. */
  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.closed || this.queuedBytes + bytes > this.queueBytesMax) {
      this.drop(1);
      return false;
    }
    this.queue.push(line);
    this.queuedBytes += bytes;
    this.writeNext();
    return true;
  }

  counters(): LineSinkCounters {
    return {
      linesWritten: this.linesWritten,
      linesDropped: this.linesDropped,
      writeFailures: this.writeFailures,
      lastFailure: this.lastFailure,
    };
  }

  /**
   * Writes out what is queued, for `timeoutMs` at most, then closes the file: lines still queued
   * then are dropped. Lines written after are dropped too.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.waiting !== undefined) {
      // A close does not wait out a retry delay: one last attempt now.
      clearTimeout(this.waiting);
      this.waiting = undefined;
      if (this.chunk !== undefined) this.writeChunk();
      else this.writeNext();
    }
    if (!this.idle()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.closed = true;
    this.drop(this.queue.length + (this.chunk?.lines ?? 0));
    this.queue = [];
    this.queuedBytes = 0;
    if (this.ownsFd) await new Promise<void>((resolve) => fs.close(this.fd, () => resolve()));
  }

  private idle(): boolean {
    return this.chunk === undefined && this.queue.length === 0;
  }

  private drop(lines: number): void {
    this.linesDropped += lines;
    this.linesDroppedUnreported += lines;
  }

  private writeNext(): void {
    if (this.chunk !== undefined || this.waiting !== undefined || this.closed) return;
    if (this.queue.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter();
      return;
    }
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && (count === 0 || bytes + Buffer.byteLength(this.queue[count]) <= writeBytesMax)) {
      bytes += Buffer.byteLength(this.queue[count]);
      count += 1;
    }
    const lines = this.queue.splice(0, count);
    this.queuedBytes -= bytes;
    if (this.linesDroppedUnreported > 0) lines.unshift(droppedLine(this.linesDroppedUnreported, this.lastFailure));
    this.chunk = { bytes: Buffer.from(lines.join('')), lines: count, offset: 0 };
    this.linesDroppedUnreported = 0;
    this.writeChunk();
  }

  private writeChunk(): void {
    const chunk = this.chunk!;
    fs.write(this.fd, chunk.bytes, chunk.offset, chunk.bytes.length - chunk.offset, null, (error, written) => {
      // Closed while this write was out: its lines were counted as dropped then.
      if (this.closed) return;
      if (error === null) {
        chunk.offset += written;
        if (chunk.offset < chunk.bytes.length) return this.writeChunk();
        this.linesWritten += chunk.lines;
        this.chunk = undefined;
        return this.writeNext();
      }
      if (error.code === 'EAGAIN' && !this.closing) return this.retryAfter(busyRetryMs, () => this.writeChunk());
      this.writeFailures += 1;
      this.lastFailure = error.code ?? error.message;
      this.chunk = undefined;
      this.drop(chunk.lines);
      this.retryAfter(this.closing ? 0 : failureRetryMs, () => this.writeNext());
    });
  }

  private retryAfter(delayMs: number, retry: () => void): void {
    this.waiting = setTimeout(() => {
      this.waiting = undefined;
      retry();
    }, delayMs);
    // Waiting to log again must not keep a stopping process alive.
    this.waiting.unref();
  }
}

/** The line that reports lost lines once the log can be written again, in pino's JSON shape. */
function droppedLine(dropped: number, failure: string | undefined): string {
  return `${JSON.stringify({ level: 40, time: Date.now(), pid: process.pid, dropped, failure, msg: 'log lines dropped' })}\n`;
}
