// Proves the memcache port tells the internal API's opening from memcache requests, and that the line it answers names the node and port the probe reads back.
import { encodeFrame, frameHeadroomBytes } from '../../../src/rpc/frames';
import { handshakeMagic } from '../../../src/rpc/handshake';
import { identifyAnswer } from '../../../src/cli/port-probe';
import { isInternalApiPrelude, parseWrongPortReply, wrongPortReply } from '../../../src/server/wrong-port';

function frameOf(body: Parameters<typeof encodeFrame>[0]['body'], kind: 'request' | 'reply' = 'request'): Buffer {
  const frame = encodeFrame({ id: 7, kind, body } as Parameters<typeof encodeFrame>[0], frameHeadroomBytes);
  if (frame instanceof Error) throw frame;
  return frame;
}

test('a frame or the secret handshake opens as the internal API', () => {
  expect(isInternalApiPrelude(frameOf({ type: 'nodeInfo' }))).toBe(true);
  expect(isInternalApiPrelude(frameOf({ type: 'locate', key: Buffer.from('k') }))).toBe(true);
  expect(isInternalApiPrelude(Buffer.concat([handshakeMagic, Buffer.alloc(32, 0x0a)]))).toBe(true);
});

test('memcache requests, and first chunks too short to tell, are left to the memcache protocols', () => {
  for (const text of ['get k\r\n', 'set k 0 0 1\r\nv\r\n', 'version\r\n', 'k', 'kai', 'kai\r\n', '\r\n', 'mg k v\r\n']) {
    expect(isInternalApiPrelude(Buffer.from(text))).toBe(false);
  }
  // A binary request starts with 0x80; a NUL line is memcached's ERROR, not a frame.
  expect(isInternalApiPrelude(Buffer.from([0x80, 0x00, 0x00, 0x01, 0x00, 0x00]))).toBe(false);
  expect(isInternalApiPrelude(Buffer.from('\0\0\0\0 junk\r\n'))).toBe(false);
  expect(isInternalApiPrelude(frameOf({ type: 'nodeInfo' }).subarray(0, 4))).toBe(false);
});

test('the refusal line names the node and its internal API port, and parses back', () => {
  const line = wrongPortReply('10.0.0.1:11011').toString();
  expect(line).toBe('SERVER_ERROR memcache port (of kai node 10.0.0.1:11011, whose internal API port is 11011)\r\n');
  expect(parseWrongPortReply(line.trimEnd())).toEqual({ nodeId: '10.0.0.1:11011', port: 11011 });
  expect(parseWrongPortReply('SERVER_ERROR out of memory')).toBeUndefined();
});

test('the probe tells an internal API, a kai memcache port, another memcache server and silence apart', () => {
  expect(identifyAnswer(frameOf({ type: 'probed' }, 'reply'))).toEqual({ kind: 'internalApi' });
  expect(identifyAnswer(wrongPortReply('h:11011'))).toEqual({ kind: 'kaiMemcache', nodeId: 'h:11011', internalPort: 11011 });
  expect(identifyAnswer(Buffer.from('ERROR\r\n'))).toEqual({ kind: 'memcache', line: 'ERROR' });
  expect(identifyAnswer(Buffer.from('CLIENT_ERROR bad command line format\r\n'))).toEqual({
    kind: 'memcache',
    line: 'CLIENT_ERROR bad command line format',
  });
  expect(identifyAnswer(Buffer.alloc(0))).toEqual({ kind: 'unknown' });
  expect(identifyAnswer(Buffer.from('HTTP/1.1 400 Bad Request\r\n'))).toEqual({ kind: 'unknown' });
});
