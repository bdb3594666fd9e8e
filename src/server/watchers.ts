/**
 * memcached's log watchers (`watch`): connections that receive a line for each event of the
 * streams they asked for. The node never waits for a watcher: each has a bounded buffer, and while
 * it is full further lines are dropped and counted; the next line that fits is preceded by
 * `skipped=<n>`, as memcached tells a watcher that fell behind.
 */
import type { WatchStream } from '../protocol/tool-commands';
import { skippedLine, skippedLineBytesMax, type EventStamp } from '../protocol/text/watch-lines';

/** Watchers at once per node: memcached's WATCHER_LIMIT. */
export const watchersMax = 20;
/** Bytes of lines one watcher holds unwritten at most: memcached's default watcher buffer. */
export const watcherBufferBytesMax = 256 * 1024;

export class Watcher {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private skipped = 0;
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(
    readonly streams: ReadonlySet<WatchStream>,
    private readonly bufferBytesMax: number,
  ) {}

  /** Lines dropped since the last one that fitted. */
  get linesSkipped(): number {
    return this.skipped;
  }

  /**
   * Queues a line, or drops it when the buffer cannot take it and the skipped notice that may
   * have to precede the next one; false when dropped.
   */
  offer(line: string): boolean {
    if (this.closed) return false;
    const bytes = Buffer.byteLength(line, 'latin1');
    if (this.pendingBytes + bytes + skippedLineBytesMax > this.bufferBytesMax) {
      this.skipped++;
      return false;
    }
    if (this.skipped > 0) {
      this.push(Buffer.from(skippedLine(this.skipped), 'latin1'));
      this.skipped = 0;
    }
    this.push(Buffer.from(line, 'latin1'));
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    return true;
  }

  /** Resolves with every line queued, once there is one; with nothing once the watcher is closed. */
  async take(): Promise<Buffer[]> {
    while (this.pending.length === 0 && !this.closed) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const lines = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return lines;
  }

  close(): void {
    this.closed = true;
    this.pending = [];
    this.pendingBytes = 0;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private push(line: Buffer): void {
    this.pending.push(line);
    this.pendingBytes += line.length;
  }
}

/** memcached's log_watcher_sent and log_watcher_skipped (`stats`), which `stats reset` clears. */
export interface WatcherCounters {
  logWatcherSent: number;
  logWatcherSkipped: number;
}

export class Watchers {
  private readonly watchers = new Set<Watcher>();
  /** memcached's gid: each event logged while someone watches its stream takes the next number. */
  private gid = 0;

  constructor(
    private readonly nowMs: () => number,
    private readonly counters: WatcherCounters = { logWatcherSent: 0, logWatcherSkipped: 0 },
    private readonly limits: { readonly watchersMax: number; readonly bufferBytesMax: number } = {
      watchersMax,
      bufferBytesMax: watcherBufferBytesMax,
    },
  ) {}

  get count(): number {
    return this.watchers.size;
  }

  /** A new watcher of `streams`; undefined when the node has as many as it keeps. */
  add(streams: readonly WatchStream[]): Watcher | undefined {
    if (this.watchers.size >= this.limits.watchersMax) return undefined;
    const watcher = new Watcher(new Set(streams), this.limits.bufferBytesMax);
    this.watchers.add(watcher);
    return watcher;
  }

  remove(watcher: Watcher): void {
    watcher.close();
    this.watchers.delete(watcher);
  }

  /** Whether anyone watches `stream`: events nobody watches are not even rendered. */
  wants(stream: WatchStream): boolean {
    for (const watcher of this.watchers) if (watcher.streams.has(stream)) return true;
    return false;
  }

  /** Renders the event once and offers it to every watcher of its stream. */
  publish(stream: WatchStream, render: (stamp: EventStamp) => string): void {
    if (!this.wants(stream)) return;
    const line = render({ nowMs: this.nowMs(), gid: ++this.gid });
    for (const watcher of this.watchers) {
      if (!watcher.streams.has(stream)) continue;
      if (watcher.offer(line)) this.counters.logWatcherSent++;
      else this.counters.logWatcherSkipped++;
    }
  }
}
