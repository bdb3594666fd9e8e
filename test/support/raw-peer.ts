/**
 * A raw connection to a node's internal port, as a hostile process would open one: any msgpack
 * body in a length-prefixed frame, unchecked, and the node's reply (or its hang-up) read back,
 * always bounded by a timeout.
 */
import * as net from 'node:net';
import { Packr } from 'msgpackr';
import { frameLengthBytes, wirePackr } from '../../src/rpc/frames';

export const peerReplyTimeoutMsDefault = 5_000;

/** What came back for one request: the reply body, or the node closing the connection. */
export type PeerAnswer = { readonly kind: 'reply'; readonly body: Record<string, unknown> } | { readonly kind: 'closed' };

/** A frame around any request body, with no check of its shape: bigger numbers than a kai node sends survive. */
export function rawRequestFrame(id: number, body: unknown): Buffer {
  const packed = new Packr({ useRecords: false }).pack({ id, kind: 'request', body });
  const prefix = Buffer.alloc(frameLengthBytes);
  prefix.writeUInt32BE(packed.length, 0);
  return Buffer.concat([prefix, packed]);
}

/** Sends one request on a fresh connection and waits for the reply or the hang-up. */
export function askRaw(port: number, body: unknown, timeoutMs = peerReplyTimeoutMsDefault, host = '127.0.0.1'): Promise<PeerAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (answer: PeerAnswer | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (answer instanceof Error) reject(answer);
      else resolve(answer);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from port ${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(rawRequestFrame(1, body)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < frameLengthBytes) return;
      const bodyBytes = received.readUInt32BE(0);
      if (received.length < frameLengthBytes + bodyBytes) return;
      const envelope = wirePackr.unpack(received.subarray(frameLengthBytes, frameLengthBytes + bodyBytes)) as { body: Record<string, unknown> };
      finish({ kind: 'reply', body: envelope.body });
    });
    socket.on('close', () => finish({ kind: 'closed' }));
    socket.on('error', () => finish({ kind: 'closed' }));
  });
}
