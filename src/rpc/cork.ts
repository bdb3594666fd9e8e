/**
 * Writes made to a socket in one turn of the event loop leave in one system call: the first write
 * of a turn corks the socket, and the end of the turn (setImmediate, after the I/O callbacks that
 * made the writes) uncorks it. A reply or request written alone costs a system call and a pass
 * through the stream machinery each; gathered, a turn's worth costs one.
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
