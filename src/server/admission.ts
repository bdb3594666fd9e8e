/**
 * Admission at the front door: how many client requests, and how many bytes of their values, the
 * node works on at once, over all its connections. Past either bound, connections stop decoding
 * requests and stop reading their sockets until requests finish, so TCP holds clients back
 * instead of the node refusing them or buffering without end. The bounds are sized to what the
 * internal API carries without refusing (a request fans out to at most a window of keys per peer,
 * and the peers' waiting lines hold far more than these bounds let in).
 */

/** Client requests in flight on a node at once, over all connections. */
export const requestsInFlightPerNodeMaxDefault = 4096;
/** Bytes of request values (sets) in flight on a node at once, over all connections. */
export const valueBytesInFlightPerNodeMaxDefault = 64 * 1024 * 1024;

export interface AdmissionLimits {
  readonly requestsInFlightMax: number;
  readonly valueBytesInFlightMax: number;
}

/** A connection that stopped for admission and wants to hear when it may go on. */
export interface AdmissionWaiter {
  resumeAfterAdmission(): void;
}

export class Admission {
  private requests = 0;
  private valueBytes = 0;
  private readonly waiters = new Set<AdmissionWaiter>();
  /** Requests that found the node full, counted once each time a connection had to wait. */
  waits = 0;

  constructor(
    readonly limits: AdmissionLimits = {
      requestsInFlightMax: requestsInFlightPerNodeMaxDefault,
      valueBytesInFlightMax: valueBytesInFlightPerNodeMaxDefault,
    },
  ) {}

  get requestsInFlight(): number {
    return this.requests;
  }

  get valueBytesInFlight(): number {
    return this.valueBytes;
  }

  /** Whether another request may start now. */
  get open(): boolean {
    return this.requests < this.limits.requestsInFlightMax && this.valueBytes < this.limits.valueBytesInFlightMax;
  }

  /** A request starts; `valueBytes` is what it carries (a set's value), held until it finishes. */
  admit(valueBytes: number): void {
    this.requests++;
    this.valueBytes += valueBytes;
  }

  /** A request admitted with `valueBytes` finished; connections waiting may go on. */
  release(valueBytes: number): void {
    this.requests--;
    this.valueBytes -= valueBytes;
    // Oldest first; one that fills the node again waits at the back of the line.
    for (const waiter of this.waiters) {
      if (!this.open) break;
      this.waiters.delete(waiter);
      waiter.resumeAfterAdmission();
    }
  }

  /** `waiter` found the node full; it hears once requests have finished. */
  wait(waiter: AdmissionWaiter): void {
    if (!this.waiters.has(waiter)) this.waits++;
    this.waiters.add(waiter);
  }

  /** A connection that closes stops waiting. */
  forget(waiter: AdmissionWaiter): void {
    this.waiters.delete(waiter);
  }
}
