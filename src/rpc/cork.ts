/**
 * Writes made to a socket in one turn of the event loop leave in one system call: the first write
 * of a turn corks the socket, and the end of the turn (setImmediate, after the I/O callbacks that
 * made the writes) uncorks it. A served internal connection's replies use it: one commit or one
 * batch settles many requests at once, and each reply written alone would cost a system call.
 */
import type { Writable } from 'node:stream';

export class TurnCork {
  private corked = false;

  constructor(private readonly stream: Writable) {}

  /** Call before writing: the writes until the end of this turn are gathered. */
  gather(): void {
    if (this.corked) return;
    this.corked = true;
    this.stream.cork();
    setImmediate(this.release);
  }

  private readonly release = (): void => {
    this.corked = false;
    this.stream.uncork();
  };
}
