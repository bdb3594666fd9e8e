/**
 * The byte budget for partly received client requests: a command line whose newline has not come,
 * a value still arriving, a binary body announced in its header. A connection asks for the bytes
 * its current request needs as soon as the decoder knows them (the header announces the length),
 * before any of them is read; when the node's budget cannot grant them, the connection stops
 * reading its socket until other connections give bytes back, so TCP holds the client back.
 *
 * Every connection may hold a small allowance whatever the others hold, so small requests keep
 * being served while large ones wait. Bytes granted to a request are kept until it is decoded, so
 * a request that started is never starved part way: a node with all of its budget granted to
 * half-received values still completes them (no deadlock), and only new large requests wait.
 * Grants alone are weighed against the budget: bytes a waiting connection read before it knew the
 * length (at most one socket read) are counted in the figure but cannot keep others waiting.
 */
import type { AdmissionWaiter } from './admission';

/** Bytes of partly received requests a node grants beyond the per-connection allowances, by default. */
export const receiveBufferBytesMaxDefault = 64 * 1024 * 1024;
/**
 * What any connection may hold without asking the budget: room for every ordinary command line
 * (memcached's 2048-byte limit, its 16 KiB read buffer) and small values.
 */
export const receiveAllowanceBytesPerConnection = 16 * 1024;

/** What one connection holds and has been granted; kept by the connection, changed only through the budget. */
export interface ReceiveAccount {
  /** Bytes counted for the connection in the node's figure: what it holds or was granted, the larger. */
  chargedBytes: number;
  /** Bytes granted to the request being received (allowance included). */
  grantedBytes: number;
}

export function newReceiveAccount(): ReceiveAccount {
  return { chargedBytes: 0, grantedBytes: 0 };
}

export class ReceiveBudget {
  /** Bytes counted over all connections: the node-wide figure in `stats kai`. */
  private totalBytes = 0;
  /** Bytes granted beyond the allowances: what the budget bounds. */
  private budgetedBytes = 0;
  /** Connections waiting, oldest first, with the budgeted bytes each asked for. */
  private readonly waiters = new Map<AdmissionWaiter, number>();
  private waking = false;
  /** Times a connection stopped reading because the budget could not grant its request. */
  waits = 0;

  constructor(readonly bytesMax: number = receiveBufferBytesMaxDefault) {}

  get bytesHeld(): number {
    return this.totalBytes;
  }

  /** Bytes granted beyond the allowances, over all connections. */
  get bytesGranted(): number {
    return this.budgetedBytes;
  }

  /**
   * Records that `account` holds `heldBytes` (already in memory, counted whatever the budget
   * says) and asks for `wantedBytes`, what its current request needs in all. True when the
   * connection may read on; false when it must wait, and then `waiter` is told once the bytes
   * can be granted.
   */
  settle(account: ReceiveAccount, heldBytes: number, wantedBytes: number, waiter: AdmissionWaiter): boolean {
    const extraBudgeted = budgeted(wantedBytes) - budgeted(account.grantedBytes);
    // With nothing granted anywhere a request larger than the whole budget still goes, alone.
    const granted = extraBudgeted <= 0 || this.fits(extraBudgeted);
    if (granted) {
      this.waiters.delete(waiter);
      this.budgetedBytes += extraBudgeted;
      account.grantedBytes = wantedBytes;
    } else {
      if (!this.waiters.has(waiter)) this.waits++;
      this.waiters.set(waiter, extraBudgeted);
    }
    this.count(account, Math.max(heldBytes, account.grantedBytes));
    if (extraBudgeted < 0) this.wake();
    return granted;
  }

  /** A connection closed: everything it held comes back, and it stops waiting. */
  close(account: ReceiveAccount, waiter: AdmissionWaiter): void {
    this.waiters.delete(waiter);
    this.budgetedBytes -= budgeted(account.grantedBytes);
    account.grantedBytes = 0;
    this.count(account, 0);
    this.wake();
  }

  private fits(extraBudgeted: number): boolean {
    return this.budgetedBytes + extraBudgeted <= this.bytesMax || this.budgetedBytes === 0;
  }

  private count(account: ReceiveAccount, bytes: number): void {
    this.totalBytes += bytes - account.chargedBytes;
    account.chargedBytes = bytes;
  }

  /**
   * Lets waiting connections ask again, oldest first, while what each asked for fits; the first
   * that does not fit stops the pass, so a large request is not overtaken for ever by small ones.
   * A woken connection asks again at once (settle), so each sees the grants of those before it.
   */
  private wake(): void {
    if (this.waking || this.waiters.size === 0) return;
    this.waking = true;
    try {
      for (const [waiter, extraBudgeted] of this.waiters) {
        if (!this.fits(extraBudgeted)) break;
        this.waiters.delete(waiter);
        waiter.resumeAfterAdmission();
      }
    } finally {
      this.waking = false;
    }
  }
}

function budgeted(bytes: number): number {
  return Math.max(0, bytes - receiveAllowanceBytesPerConnection);
}
