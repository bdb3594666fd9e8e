/**
 * What answers at an address that did not answer a command as a node's internal API does: a probe
 * connection sends the internal API's `probe` request followed by a line end, and reads the first
 * bytes that come back.
 *
 * - A node's internal API answers the probe with a frame (its first byte is a length's, 0).
 * - A kai node's memcache port recognises the internal API's opening and answers one line naming
 *   its node and internal API port (server/wrong-port.ts).
 * - Any other memcache server takes the bytes for a bad command line, which the line end
 *   completes, and answers `ERROR` or `CLIENT_ERROR ...`.
 * - Anything else (a node that asks for the cluster secret or TLS, which closes the probe) is
 *   unknown, and the command reports its own failure.
 */
import net from 'node:net';
import { defaultSettings } from '../config/settings';
import { encodeFrame, frameHeadroomBytes } from '../rpc/frames';
import { parseWrongPortReply } from '../server/wrong-port';

/** How long the probe waits for the first bytes of an answer. */
export const probeTimeoutMs = 2_000;
/** The first line of an answer is all the probe reads. */
const answerBytesMax = 1024;

export type PortIdentity =
  | { readonly kind: 'internalApi' }
  /** A kai node's memcache port: the node and its internal API port, as it names them. */
  | { readonly kind: 'kaiMemcache'; readonly nodeId: string; readonly internalPort: number }
  /** Some other server speaking the memcache text protocol, and its first line. */
  | { readonly kind: 'memcache'; readonly line: string }
  | { readonly kind: 'unknown' };

/** Replies that only a memcache server's text protocol gives to a line it cannot parse. */
const memcacheLinePattern = /^(ERROR|CLIENT_ERROR|SERVER_ERROR)\b/;

/** Classifies the first bytes an address answered the probe with. Pure. */
export function identifyAnswer(answer: Buffer): PortIdentity {
  if (answer.length === 0) return { kind: 'unknown' };
  if (answer[0] === 0) return { kind: 'internalApi' };
  const line = answer.toString('latin1').split('\n')[0].replace(/\r$/, '');
  const named = parseWrongPortReply(line);
  if (named !== undefined) return { kind: 'kaiMemcache', nodeId: named.nodeId, internalPort: named.port };
  if (memcacheLinePattern.test(line)) return { kind: 'memcache', line };
  return { kind: 'unknown' };
}

function probeBytes(): Buffer {
  const frame = encodeFrame({ id: 0, kind: 'request', body: { type: 'probe' } }, frameHeadroomBytes);
  if (frame instanceof Error) throw frame;
  return Buffer.concat([frame, Buffer.from('\r\n')]);
}

/** Probes `address` (host:port); never rejects. */
export function identifyPort(address: string, timeoutMs = probeTimeoutMs): Promise<PortIdentity> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const socket = net.connect({ host, port });
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(identifyAnswer(Buffer.concat(chunks)));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.once('connect', () => socket.write(probeBytes()));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= answerBytesMax || chunk.includes(0x0a) || chunks[0][0] === 0) done();
    });
    socket.once('error', done);
    socket.once('close', done);
  });
}

/** The line a command prints when the address it was given is a memcache port. */
export function wrongPortMessage(address: string, identity: PortIdentity): string {
  const host = address.slice(0, address.lastIndexOf(':'));
  if (identity.kind === 'kaiMemcache') {
    return (
      `${address} is the memcache port of kai node ${identity.nodeId}; ` +
      `kai commands talk to its internal API port: ${host}:${identity.internalPort}`
    );
  }
  const answered = identity.kind === 'memcache' ? ` (it answered ${JSON.stringify(identity.line.slice(0, 60))})` : '';
  return `${address} speaks the memcache protocol${answered}, not kai's internal API: give the node's internal API port (kai start's --port, ${defaultSettings.port} by default)`;
}
