import { TextAuthHandshake, credentialsBlockBytesMax, type HandshakeEvent } from '../../../src/auth/text-handshake';

type Summary = string;

function summarize(event: HandshakeEvent): Summary {
  if (event.kind === 'credentials') return `credentials ${event.user.toString('latin1')} ${event.password.toString('latin1')}`;
  return event.kind;
}

/** Pushes each chunk and collects every event the handshake yields after it. */
function feed(handshake: TextAuthHandshake, chunks: readonly (string | Buffer)[]): Summary[] {
  const events: Summary[] = [];
  for (const chunk of chunks) {
    handshake.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    for (let event = handshake.next(); event; event = handshake.next()) events.push(summarize(event));
  }
  return events;
}

const run = (...chunks: (string | Buffer)[]): Summary[] => feed(new TextAuthHandshake(), chunks);

describe('TextAuthHandshake', () => {
  test('refuses every line that is not an auth set, each on its own', () => {
    // Proves one refusal per line, whatever the line, including quit and an empty line.
    expect(run('get a\r\nquit\r\n\r\nadd k 0 0 5\r\nhello\r\nset k 0 0\r\nset k 0 0 -1\r\n')).toEqual(
      Array(7).fill('unauthenticated'),
    );
  });

  test('takes the user and password from the block of a set, ignoring key, flags, exptime and noreply', () => {
    // Proves the credentials are the first two space-separated tokens of the block.
    expect(run('set anything x y 12 noreply\r\nalice secret\r\n')).toEqual(['credentials alice secret']);
    expect(run('set k 0 0 23\r\n  alice  secret  extra \r\n')).toEqual(['credentials alice secret']);
    expect(run('set k 0 0 9\nbob pa:ss\r\n')).toEqual(['credentials bob pa:ss']);
  });

  test('a block without its CRLF or with fewer than two tokens is answered and parsing goes on', () => {
    // Proves the two block errors, and that the stream stays in step after them.
    expect(run('set k 0 0 3\r\nabcXYget a\r\n')).toEqual(['bad-termination', 'unauthenticated']);
    expect(run('set k 0 0 5\r\nalice\r\nset k 0 0 0\r\n\r\n')).toEqual(['bad-token-format', 'bad-token-format']);
  });

  test('a NUL ends a line or a block early, as in C strings', () => {
    // Proves memcached's C-string reading of both.
    expect(run('set k 0 0 12\0 junk\r\nalice secret\r\n')).toEqual(['credentials alice secret']);
    expect(run('set k 0 0 14\r\nalice secret\0x\r\n')).toEqual(['credentials alice secret']);
  });

  test('a lone newline waits for a second byte before it is judged', () => {
    // Proves memcached's two-byte minimum before it looks at a line.
    const handshake = new TextAuthHandshake();
    expect(feed(handshake, ['\n'])).toEqual([]);
    expect(feed(handshake, ['x'])).toEqual(['unauthenticated']);
  });

  test('every split of an auth stream yields the same events', () => {
    // Proves the parser does not depend on how TCP cuts the bytes.
    const stream = Buffer.from('get a\r\nset k 0 0 3\r\nabcXYset k 0 0 12\r\nalice secret\r\n', 'latin1');
    const whole = run(stream);
    expect(whole).toEqual(['unauthenticated', 'bad-termination', 'credentials alice secret']);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(run(stream.subarray(0, cut), stream.subarray(cut))).toEqual(whole);
    }
    expect(run(...[...stream].map((byte) => Buffer.from([byte])))).toEqual(whole);
  });

  test('remaining() hands over the bytes pipelined behind the credentials', () => {
    // Proves commands sent with the login are not lost when the text decoder takes over.
    const handshake = new TextAuthHandshake();
    handshake.push(Buffer.from('set k 0 0 12\r\nalice secret\r\nget a\r\nver'));
    const event = handshake.next();
    expect(event && summarize(event)).toBe('credentials alice secret');
    expect(handshake.remaining().toString('latin1')).toBe('get a\r\nver');
    expect(handshake.next()).toBeUndefined();
  });

  test('a line of more than 2048 bytes without a newline closes', () => {
    // Proves memcached's bound on an unfinished line, with no exception for get.
    expect(run('x'.repeat(2048))).toEqual([]);
    expect(run('x'.repeat(2049))).toEqual(['close']);
    expect(run(`get ${'k'.repeat(2045)}`)).toEqual(['close']);
  });

  test('a block that cannot fit the 16 KiB buffer closes once the buffer is full', () => {
    // Proves the credentials block is bounded, and that nothing is answered before the bound.
    const fits = credentialsBlockBytesMax - 2;
    expect(run(`set k 0 0 ${fits}\r\n`, 'a'.repeat(fits), '\r\n')).toEqual(['bad-token-format']);
    const handshake = new TextAuthHandshake();
    expect(feed(handshake, [`set k 0 0 ${fits + 1}\r\n`, 'a'.repeat(credentialsBlockBytesMax - 1)])).toEqual([]);
    expect(feed(handshake, ['a'])).toEqual(['close']);
    expect(run('set k 0 0 4294967295\r\n', 'a'.repeat(credentialsBlockBytesMax))).toEqual(['close']);
  });

  test('after a close, further bytes are ignored', () => {
    // Proves nothing is buffered or answered once the connection is closing.
    const handshake = new TextAuthHandshake();
    expect(feed(handshake, ['x'.repeat(3000), 'set k 0 0 12\r\nalice secret\r\n'])).toEqual(['close']);
  });
});
