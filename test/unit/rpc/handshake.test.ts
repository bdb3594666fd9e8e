// The cluster-secret handshake's state machines: both sides prove the secret, and nothing else gets through.
import { AcceptorHandshake, DialerHandshake, handshakeMagic, nonceBytes, type HandshakeStep } from '../../../src/rpc/handshake';

const secret = Buffer.from('a cluster secret of enough bytes');
const otherSecret = Buffer.from('another secret, also long enough');
const dialerNonce = Buffer.alloc(nonceBytes, 1);
const acceptorNonce = Buffer.alloc(nonceBytes, 2);

/** Feeds `bytes` to `receive` in pieces of `pieceBytes`, returning every step. */
function feed(receive: (chunk: Buffer) => HandshakeStep, bytes: Buffer, pieceBytes: number): HandshakeStep[] {
  const steps: HandshakeStep[] = [];
  for (let start = 0; start < bytes.length; start += pieceBytes) steps.push(receive(bytes.subarray(start, start + pieceBytes)));
  return steps;
}

function sent(steps: readonly HandshakeStep[]): Buffer {
  return Buffer.concat(steps.flatMap((step) => (step.kind !== 'failed' && step.send ? [step.send] : [])));
}

/** Runs a whole exchange, each side's bytes delivered to the other in pieces of `pieceBytes`. */
function exchange(dialerSecret: Buffer, acceptorSecret: Buffer, pieceBytes: number, afterProof = Buffer.alloc(0)) {
  const dialer = new DialerHandshake(dialerSecret, dialerNonce);
  const acceptor = new AcceptorHandshake(acceptorSecret, acceptorNonce);
  const acceptorFirst = feed((chunk) => acceptor.receive(chunk), dialer.hello(), pieceBytes);
  const dialerSteps = feed((chunk) => dialer.receive(chunk), sent(acceptorFirst), pieceBytes);
  const dialerLast = dialerSteps[dialerSteps.length - 1];
  if (dialerLast.kind !== 'done') return { dialerLast, acceptorLast: undefined };
  const acceptorSteps = feed((chunk) => acceptor.receive(chunk), Buffer.concat([sent(dialerSteps), afterProof]), pieceBytes);
  return { dialerLast, acceptorLast: acceptorSteps[acceptorSteps.length - 1] };
}

it('completes with the same secret on both sides, however the bytes are split', () => {
  for (const pieceBytes of [1, 3, 7, 32, 1000]) {
    const { dialerLast, acceptorLast } = exchange(secret, secret, pieceBytes);
    expect(dialerLast.kind).toBe('done');
    expect(acceptorLast?.kind).toBe('done');
  }
});

it('hands on the frame bytes that arrive with the dialer proof', () => {
  const frames = Buffer.from('the first frame bytes');
  const { acceptorLast } = exchange(secret, secret, 1000, frames);
  expect(acceptorLast).toEqual({ kind: 'done', send: undefined, rest: frames });
});

it('fails on the dialer when the acceptor holds another secret, before the dialer proves anything', () => {
  const { dialerLast, acceptorLast } = exchange(secret, otherSecret, 5);
  expect(dialerLast).toEqual({ kind: 'failed', reason: expect.stringMatching(/wrong cluster secret/) });
  expect(acceptorLast).toBeUndefined();
});

it('fails on the acceptor when the dialer cannot prove the secret', () => {
  const acceptor = new AcceptorHandshake(secret, acceptorNonce);
  const challenge = acceptor.receive(Buffer.concat([handshakeMagic, dialerNonce]));
  expect(challenge.kind).toBe('pending');
  expect(acceptor.receive(Buffer.alloc(32, 7))).toEqual({ kind: 'failed', reason: expect.stringMatching(/wrong cluster secret/) });
});

it("refuses the acceptor's own proof reflected back as the dialer's", () => {
  const acceptor = new AcceptorHandshake(secret, acceptorNonce);
  const challenge = acceptor.receive(Buffer.concat([handshakeMagic, dialerNonce]));
  if (challenge.kind !== 'pending' || !challenge.send) throw new Error('expected a challenge');
  const acceptorProof = challenge.send.subarray(nonceBytes);
  expect(acceptor.receive(acceptorProof).kind).toBe('failed');
});

it('fails at the first byte that is not the handshake, such as a frame', () => {
  const acceptor = new AcceptorHandshake(secret, acceptorNonce);
  expect(acceptor.receive(Buffer.from([0x00, 0x00]))).toEqual({ kind: 'failed', reason: expect.stringMatching(/no cluster-secret handshake/) });
  const second = new AcceptorHandshake(secret, acceptorNonce);
  expect(second.receive(handshakeMagic.subarray(0, 2)).kind).toBe('pending');
  expect(second.receive(Buffer.from([0x7f])).kind).toBe('failed');
});

it('gives each connection its own proofs: another nonce, another challenge', () => {
  const first = new AcceptorHandshake(secret, acceptorNonce).receive(Buffer.concat([handshakeMagic, dialerNonce]));
  const second = new AcceptorHandshake(secret, Buffer.alloc(nonceBytes, 3)).receive(Buffer.concat([handshakeMagic, dialerNonce]));
  if (first.kind !== 'pending' || second.kind !== 'pending') throw new Error('expected challenges');
  expect(first.send?.equals(second.send ?? Buffer.alloc(0))).toBe(false);
});
