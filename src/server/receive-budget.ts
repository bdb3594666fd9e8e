/**
 * The byte budget for partly received client requests: a command line whose newline has not come,
 * a value still arriving, a binary body announced in its header. A connection asks for the bytes
 * its current request needs as soon as the decoder knows them (the header announces the length),
 * before any of them is read; when the node's budget cannot take them, the connection stops
 * reading its socket until other connections give bytes back, so TCP holds the client back.
 *
 * Every connection may hold a small allowance whatever the others hold, so small requests keep
 * being served while large ones wait. Bytes granted to a request are kept until it is decoded, so
 * a request that started is never starved part way: a node with every byte of its budget granted
 * to half-received values still completes them (no deadlock), and only new large requests wait.
 */
import type { AdmissionWaiter } from './admission';

/** Bytes of partly received requests a node holds beyond the per-connection allowances, by default. */
export const receiveBufferBytesMaxDefault = 64 * 1024 * 1024;
/**
 * What any connection may hold without asking the budget: room for every ordinary command line
 * (memcached's 2048-byte limit, its 16 KiB read buffer) and small values.
 */
export const receiveAllowanceBytesPerConnection = 16 * 1024;
/**
 * The most one socket read adds (libuv reads at most 64 KiB at a time). A connection allowed to
 * read may go over what it was granted by this much; waking waiters leaves room for it.
 */
export const socketReadBytesMax = 64 * 1024;

/** What one connection has been granted; kept by the connection, changed only through the budget. */
export interface ReceiveAccount {
  /** Bytes counted for the connection in all (allowance included). */
  chargedBytes: number;
}

export class ReceiveBudget {
  /** Bytes counted over all connections, allowances included: the node-wide figure in `stats kai`. */
  private totalBytes = 0;
  /** Bytes counted beyond the allowances: what the budget bounds. */
  private budgetedBytes = 0;
  private readonly waiters = new Set<AdmissionWaiter>();
  /** Times a connection stopped reading because the budget could not take its next request. */
  waits = 0;

  constructor(readonly bytesMax: number = receiveBufferBytesMaxDefault) {}

  get bytesHeld(): number {
    return this.totalBytes;
  }

  /**
   * Sets what `account` holds to `heldBytes` (already in memory, counted whatever the budget says)
   * and asks for `wantedBytes` (what its current request needs in all). True when the connection
   * may read on; false when it must wait, and then `waiter` is told once bytes come back.
   */
  settle(account: ReceiveAccount, heldBytes: number, wantedBytes: number, waiter: AdmissionWaiter): boolean {
    const target = Math.max(heldBytes, wantedBytes);
    if (target <= account.chargedBytes) {
      this.waiters.delete(waiter);
      this.charge(account, target);
      return true;
    }
    // Bytes already received are counted at once; only the bytes not yet read may be refused.
    if (heldBytes > account.chargedBytes) this.charge(account, heldBytes);
    const extraBudgeted = budgeted(target) - budgeted(account.chargedBytes);
    // With nothing budgeted anywhere a request larger than the whole budget still goes, alone.
    if (extraBudgeted === 0 || this.budgetedBytes + extraBudgeted <= this.bytesMax || this.budgetedBytes === 0) {
      this.waiters.delete(waiter);
      this.charge(account, target);
      return true;
    }
    if (!this.waiters.has(waiter)) this.waits++;
    this.waiters.add(waiter);
    return false;
  }

  /** A connection closed: everything it held comes back, and it stops waiting. */
  close(account: ReceiveAccount, waiter: AdmissionWaiter): void {
    this.waiters.delete(waiter);
    this.charge(account, 0);
  }

  private charge(account: ReceiveAccount, bytes: number): void {
    const before = account.chargedBytes;
    this.totalBytes += bytes - before;
    this.budgetedBytes += budgeted(bytes) - budgeted(before);
    account.chargedBytes = bytes;
    if (bytes < before) this.wake();
  }

  /**
   * Lets waiting connections try again, oldest first, while the budget has room for what they
   * may read before they ask (one socket read each), so waking them cannot overshoot it much.
   */
  private wake(): void {
    if (this.waiters.size === 0) return;
    let woken = 0;
    // A woken connection that still cannot go on joins the line again, at its back: visiting no
    // more than were waiting at the start keeps it from being woken twice in one pass.
    let visitsLeft = this.waiters.size;
    for (const waiter of this.waiters) {
      if (visitsLeft-- === 0) break;
      if (this.budgetedBytes + (woken + 1) * socketReadBytesMax > this.bytesMax && this.budgetedBytes > 0) break;
      this.waiters.delete(waiter);
      woken++;
      waiter.resumeAfterAdmission();
    }
  }
}

function budgeted(bytes: number): number {
  return Math.max(0, bytes - receiveAllowanceBytesPerConnection);
}
