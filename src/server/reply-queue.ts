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
    const slot: Slot = { chunks: undefined, closeAfter: false };
    this.slots.push(slot);
    return (chunks, closeAfter = false) => {
      slot.chunks = chunks;
      slot.closeAfter = closeAfter;
      this.drain();
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
      closeAfter = slot.closeAfter;
      this.head++;
    }
    if (this.head === this.slots.length) {
      this.slots.length = 0;
      this.head = 0;
    }
    if (ready.length > 0 && !this.closed) this.sink.write(ready);
    if (closeAfter) this.closeSink();
  }

  private closeSink(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.close();
  }
}
