/**
 * The bytes of partly received frames a node holds for all its served connections at once. A
 * connection whose frame has declared its length reserves that many bytes before it reads the
 * rest; when the budget cannot take it, the connection stops reading until a reservation is
 * released, in the order they asked. Peers that each start a large frame and never finish it
 * therefore hold at most `bytesMax` (plus one read of a socket each), not one frame cap each.
 *
 * One reservation is always granted when none is held, so a frame larger than the whole budget
 * still gets through, alone. A granted frame completes as fast as its peer sends it, so every
 * waiting connection is served in turn.
 */
import { assert } from '../errors';

interface Waiter {
  readonly bytes: number;
  readonly granted: () => void;
}

export class ReceiveBudget {
  private reservedBytes = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly bytesMax: number) {
    assert(Number.isFinite(bytesMax) && bytesMax > 0, 'a receive budget is positive');
  }

  /** Bytes reserved now. */
  get reserved(): number {
    return this.reservedBytes;
  }

  /** Connections waiting for room. */
  get waiters(): number {
    return this.waiting.length;
  }

  /**
   * Reserves `bytes` now and answers true, or queues the request and answers false: `granted` is
   * then called once the bytes are reserved for it, after those that asked before.
   */
  reserve(bytes: number, granted: () => void): boolean {
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.reservedBytes += bytes;
      return true;
    }
    this.waiting.push({ bytes, granted });
    return false;
  }

  release(bytes: number): void {
    assert(bytes >= 0 && bytes <= this.reservedBytes, 'a release returns what was reserved');
    this.reservedBytes -= bytes;
    while (this.waiting.length > 0 && this.fits(this.waiting[0].bytes)) {
      const waiter = this.waiting.shift()!;
      this.reservedBytes += waiter.bytes;
      waiter.granted();
    }
  }

  /** Forgets a queued request whose connection is gone. */
  cancel(granted: () => void): void {
    const index = this.waiting.findIndex((waiter) => waiter.granted === granted);
    if (index >= 0) this.waiting.splice(index, 1);
  }

  private fits(bytes: number): boolean {
    return this.reservedBytes === 0 || this.reservedBytes + bytes <= this.bytesMax;
  }
}
