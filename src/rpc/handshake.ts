/**
 * The cluster-secret handshake that opens every internal API connection when the nodes share a
 * secret (--cluster-secret-file). Each side proves it holds the secret to the other before a
 * single frame is read, without the secret ever crossing the wire:
 *
 *   dialer   → acceptor  magic (4 bytes) + dialer nonce (32)
 *   acceptor → dialer    acceptor nonce (32) + HMAC-SHA256(secret, "acceptor" | dialer nonce | acceptor nonce)
 *   dialer   → acceptor  HMAC-SHA256(secret, "dialer" | dialer nonce | acceptor nonce)
 *
 * then frames. Both nonces are fresh per connection, so a recorded proof is worth nothing on
 * another connection; the two roles are labelled apart, so a proof one side gives cannot be
 * reflected back as the other's. Proofs are compared in constant time.
 *
 * The magic read as a frame's length prefix declares over a gigabyte, more than any node's frame
 * cap: a node without a secret closes a handshaking dialer, and a node with one closes a dialer
 * that starts with a frame, each saying why.
 *
 * The state machines here take bytes and return what to send and what became of the handshake;
 * the sockets, timers and nonces are the connections' (served-connection.ts, peer-connection.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** "kai" and the handshake's version. */
export const handshakeMagic = Buffer.from([0x6b, 0x61, 0x69, 0x01]);
export const nonceBytes = 32;
const proofBytes = 32;
const helloBytes = handshakeMagic.length + nonceBytes;
const challengeBytes = nonceBytes + proofBytes;

/** Shorter secrets are refused: the handshake is only as strong as the secret is hard to guess. */
export const clusterSecretBytesMin = 16;
/** A secret file is read whole; anything this long is not a secret but a mistake. */
export const clusterSecretBytesMax = 4096;
/** How long a new connection has to complete the handshake before it is closed. */
export const handshakeTimeoutMsDefault = 5_000;

function proof(secret: Buffer, role: 'acceptor' | 'dialer', dialerNonce: Buffer, acceptorNonce: Buffer): Buffer {
  return createHmac('sha256', secret).update(role).update(dialerNonce).update(acceptorNonce).digest();
}

function proofMatches(expected: Buffer, given: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(expected, given);
}

export type HandshakeStep =
  /** Waiting for more bytes; `send` (when given) goes to the other side first. */
  | { readonly kind: 'pending'; readonly send?: Buffer }
  /** The other side proved the secret. `send` goes first; `rest` is the start of the frame stream. */
  | { readonly kind: 'done'; readonly send?: Buffer; readonly rest: Buffer }
  | { readonly kind: 'failed'; readonly reason: string };

/** Whether `bytes` start the way a handshaking dialer starts (as far as they go). */
export function startsWithHandshake(bytes: Buffer): boolean {
  const length = Math.min(bytes.length, handshakeMagic.length);
  return length > 0 && bytes.subarray(0, length).equals(handshakeMagic.subarray(0, length));
}

/**
 * The bytes one side has received so far: a handshake is a few dozen bytes, so they are kept in
 * one Buffer, grown by the chunks that bring them (the last may also start the frame stream).
 */
class Received {
  private bytes: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.bytes = this.bytes.length === 0 ? chunk : Buffer.concat([this.bytes, chunk]);
  }

  get byteLength(): number {
    return this.bytes.length;
  }

  get all(): Buffer {
    return this.bytes;
  }

  take(byteCount: number): Buffer {
    const taken = this.bytes.subarray(0, byteCount);
    this.bytes = this.bytes.subarray(byteCount);
    return taken;
  }
}

/** The accepting side: reads the hello, answers with its challenge and proof, checks the dialer's. */
export class AcceptorHandshake {
  private readonly received = new Received();
  private dialerNonce: Buffer | undefined;

  constructor(
    private readonly secret: Buffer,
    private readonly acceptorNonce: Buffer,
  ) {}

  receive(chunk: Buffer): HandshakeStep {
    this.received.push(chunk);
    let send: Buffer | undefined;
    if (this.dialerNonce === undefined) {
      if (this.received.byteLength < helloBytes) {
        return startsWithHandshake(this.received.all) ? { kind: 'pending' } : this.notHandshaking();
      }
      const hello = this.received.take(helloBytes);
      if (!hello.subarray(0, handshakeMagic.length).equals(handshakeMagic)) return this.notHandshaking();
      this.dialerNonce = hello.subarray(handshakeMagic.length);
      send = Buffer.concat([this.acceptorNonce, proof(this.secret, 'acceptor', this.dialerNonce, this.acceptorNonce)]);
    }
    if (this.received.byteLength < proofBytes) return { kind: 'pending', send };
    const given = this.received.take(proofBytes);
    if (!proofMatches(proof(this.secret, 'dialer', this.dialerNonce, this.acceptorNonce), given)) {
      return { kind: 'failed', reason: 'wrong cluster secret: the dialer could not prove it' };
    }
    return { kind: 'done', send, rest: this.received.take(this.received.byteLength) };
  }

  private notHandshaking(): HandshakeStep {
    return { kind: 'failed', reason: 'no cluster-secret handshake: the dialer is not started with this cluster secret' };
  }
}

/** The dialling side: sends the hello, checks the acceptor's proof, answers with its own. */
export class DialerHandshake {
  private readonly received = new Received();
  constructor(
    private readonly secret: Buffer,
    private readonly dialerNonce: Buffer,
  ) {}

  /** The first bytes on a new connection. */
  hello(): Buffer {
    return Buffer.concat([handshakeMagic, this.dialerNonce]);
  }

  receive(chunk: Buffer): HandshakeStep {
    this.received.push(chunk);
    if (this.received.byteLength < challengeBytes) return { kind: 'pending' };
    const challenge = this.received.take(challengeBytes);
    const acceptorNonce = challenge.subarray(0, nonceBytes);
    const given = challenge.subarray(nonceBytes);
    if (!proofMatches(proof(this.secret, 'acceptor', this.dialerNonce, acceptorNonce), given)) {
      return { kind: 'failed', reason: 'wrong cluster secret: the peer could not prove it' };
    }
    return {
      kind: 'done',
      send: proof(this.secret, 'dialer', this.dialerNonce, acceptorNonce),
      rest: this.received.take(this.received.byteLength),
    };
  }
}
