/**
 * A raw memcache connection for tests: send exact bytes, read replies until a predicate holds,
 * always bounded by a timeout.
 */
import * as net from 'node:net';

export const replyTimeoutMsDefault = 5_000;

export class RawClient {
  private received = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private closedFlag = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closedFlag = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Waits until the bytes received so far satisfy `done`, then takes and returns them. */
  async readUntil(done: (received: Buffer) => boolean, timeoutMs = replyTimeoutMsDefault): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.received)) {
      if (this.closedFlag) throw new Error(`connection closed; received: ${JSON.stringify(this.received.toString('latin1'))}`);
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) {
        throw new Error(`no complete reply within ${timeoutMs} ms; received: ${JSON.stringify(this.received.toString('latin1'))}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remainingMs);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    const taken = this.received;
    this.received = Buffer.alloc(0);
    return taken;
  }

  /** Sends `request` and reads until the reply ends with `terminator`. */
  async request(request: string | Buffer, terminator = '\r\n', timeoutMs?: number): Promise<string> {
    this.send(request);
    const reply = await this.readUntil((received) => received.toString('latin1').endsWith(terminator), timeoutMs);
    return reply.toString('latin1');
  }

  /** Resolves once the server has closed the connection, bounded in time. */
  async waitClosed(timeoutMs = replyTimeoutMsDefault): Promise<void> {
    await this.readUntil(() => this.closedFlag, timeoutMs).catch((error: unknown) => {
      if (!this.closedFlag) throw error;
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
