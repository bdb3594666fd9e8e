/**
 * Keeps a connection's replies in request order while requests finish out of order: each request
 * takes a slot when decoded, and slots are written from the head as soon as they are filled.
 */
export interface ReplySink {
  write(chunks: readonly Buffer[]): void;
  /** Ends the connection after everything before it was written. */
  close(): void;
}

interface Slot {
  chunks: readonly Buffer[] | undefined;
  closeAfter: boolean;
  /** A reply written in parts (a multiget window by window): `chunks` holds the parts not yet written. */
  streaming: boolean;
  ended: boolean;
  /** Started once every reply before this one is written (reserveAtHead). */
  whenHead?: () => void;
}

/** A reply reserved in the order, written in parts as they come: each written once all before it are. */
export interface ReplyStream {
  /** Appends a part of the reply. */
  push(chunks: readonly Buffer[]): void;
  /** Appends the last part; with `closeAfter`, the connection closes once it is written. */
  end(chunks: readonly Buffer[], closeAfter?: boolean): void;
  /**
   * Whether the reply is next on the wire and every part pushed so far has been written: a
   * producer waits for this before it makes the next part, so one reply holds at most one part.
   */
  readonly flushed: boolean;
}

export class ReplyQueue {
  private readonly slots: Slot[] = [];
  private head = 0;
  private closed = false;

  constructor(private readonly sink: ReplySink) {}

  /** Requests decoded but not yet answered on the wire. */
  get inFlight(): number {
    return this.slots.length - this.head;
  }

  /** Reserves the next place in the reply order; call the returned function once with the reply. */
  reserve(): (chunks: readonly Buffer[], closeAfter?: boolean) => void {
    const slot: Slot = { chunks: undefined, closeAfter: false, streaming: false, ended: false };
    this.slots.push(slot);
    return (chunks, closeAfter = false) => {
      slot.chunks = chunks;
      slot.closeAfter = closeAfter;
      this.drain();
    };
  }

  /**
   * Reserves the next place in the reply order for a request that must not start before every
   * request ahead of it is answered: `start` runs then, and fills its place with `fill`.
   */
  reserveAtHead(start: (fill: (chunks: readonly Buffer[], closeAfter?: boolean) => void) => void): void {
    const slot: Slot = { chunks: undefined, closeAfter: false, streaming: false, ended: false };
    const fill = (chunks: readonly Buffer[], closeAfter = false): void => {
      slot.chunks = chunks;
      slot.closeAfter = closeAfter;
      this.drain();
    };
    slot.whenHead = () => start(fill);
    this.slots.push(slot);
    this.drain();
  }

  /** Reserves the next place in the reply order for a reply written in parts. */
  reserveStream(): ReplyStream {
    const slot: Slot = { chunks: [], closeAfter: false, streaming: true, ended: false };
    this.slots.push(slot);
    const append = (chunks: readonly Buffer[]): void => {
      const held = slot.chunks as Buffer[];
      for (const chunk of chunks) held.push(chunk);
    };
    const queue = this;
    return {
      push: (chunks) => {
        append(chunks);
        this.drain();
      },
      end: (chunks, closeAfter = false) => {
        append(chunks);
        slot.closeAfter = closeAfter;
        slot.ended = true;
        this.drain();
      },
      get flushed() {
        return queue.slots[queue.head] === slot && (slot.chunks as Buffer[]).length === 0;
      },
    };
  }

  /** Answers at once when nothing is waiting ahead, without taking a slot. */
  answer(chunks: readonly Buffer[], closeAfter = false): void {
    if (this.inFlight === 0 && !this.closed) {
      if (chunks.length > 0) this.sink.write(chunks);
      if (closeAfter) this.closeSink();
      return;
    }
    this.reserve()(chunks, closeAfter);
  }

  private drain(): void {
    const ready: Buffer[] = [];
    let closeAfter = false;
    while (this.head < this.slots.length && !closeAfter) {
      const slot = this.slots[this.head];
      if (!slot.chunks) break;
      // A loop, not a spread: a multiget's reply may hold more chunks than a call has arguments.
      for (const chunk of slot.chunks) ready.push(chunk);
      if (slot.streaming) {
        slot.chunks = [];
        if (!slot.ended) break;
      }
      closeAfter = slot.closeAfter;
      this.head++;
    }
    if (this.head === this.slots.length) {
      this.slots.length = 0;
      this.head = 0;
    }
    if (ready.length > 0 && !this.closed) this.sink.write(ready);
    if (closeAfter) this.closeSink();
    // Started only now, after the replies ahead were written: a fill it makes at once drains anew.
    const next = this.slots[this.head];
    if (next?.whenHead && !this.closed) {
      const start = next.whenHead;
      next.whenHead = undefined;
      start();
    }
  }

  private closeSink(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.close();
  }
}
