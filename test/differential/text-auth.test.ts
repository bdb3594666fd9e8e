/**
 * Differential tests of text protocol authentication: the same byte streams go to Debian's
 * memcached started with `-Y <file>` and to kai started with `--auth-file <file>` (the same file),
 * and the replies must match byte for byte.
 *
 * Before login, each step is sent as its own write with a generous gap: memcached 1.6 answers only
 * the last of several refused lines that arrive in one read (they share its reply buffer), which
 * kai deliberately does not copy, so a stream never puts two refused lines in one write.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TextCredentials } from '../support/servers';
import {
  normalizeReplies,
  runStream,
  startMemcached,
  startSubject,
  subjectEnvironmentVariable,
  type RunningServer,
  type ServerOptions,
  type StreamStep,
} from './harness';

const valueBytesMax = 1024 * 1024;
/** Long enough that two steps never reach memcached in one read, even on a busy machine. */
const stepGapMs = 50;
const alice: TextCredentials = { user: 'alice', password: 'secret' };
const authFileContent = 'alice:secret\r\nbob:pa:ss\ncarol:two words\ndave:\n';

const auth = (data: string, key = 'auth', extra = ''): string =>
  `set ${key} 0 0 ${Buffer.byteLength(data, 'latin1')}${extra}\r\n${data}\r\n`;
const set = (key: string, value: string): string => `set ${key} 0 0 ${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n`;

interface AuthStreamCase {
  readonly name: string;
  readonly steps: (key: (name: string) => string) => StreamStep[];
  readonly expectClose?: boolean;
}

const refusals: AuthStreamCase[] = [
  {
    name: 'every command is refused before login, quit included',
    steps: (key) => [
      `get ${key('a')}\r\n`,
      'version\r\n',
      'stats\r\n',
      `delete ${key('a')}\r\n`,
      'flush_all\r\n',
      'quit\r\n',
      'nonsense\r\n',
      '\r\n',
      `get ${key('a')}\r\n`,
    ],
  },
  {
    name: 'the data line of a storage command other than set is refused on its own',
    steps: (key) => [`add ${key('a')} 0 0 5\r\n`, 'hello\r\n', `append ${key('a')} 0 0 1\r\n`, 'x\r\n'],
  },
  {
    name: 'a set line that is not an auth set is refused',
    steps: (key) => [
      `SET ${key('a')} 0 0 12\r\n`,
      `set ${key('a')} 0 0\r\n`,
      `set ${key('a')} 0 0 -1\r\n`,
      `set ${key('a')} 0 0 12abc\r\n`,
      `set\t${key('a')} 0 0 12\r\n`,
      `set ${key('a')} 0 0 0x10\r\n`,
    ],
  },
];

const logins: AuthStreamCase[] = [
  {
    name: 'right credentials log in, then commands work and the auth key was not stored',
    steps: (key) => [auth('alice secret', key('login')), `get ${key('login')}\r\n`, set(key('a'), 'v'), `get ${key('a')}\r\n`],
  },
  {
    name: 'a wrong password is refused, the connection stays open and may try again',
    steps: (key) => [
      auth('alice wrong'),
      `get ${key('a')}\r\n`,
      auth('alice Secret'),
      auth('alice secret'),
      `get ${key('a')}\r\n`,
    ],
  },
  {
    name: 'an unknown user and an empty user are refused',
    steps: () => [auth('mallory secret'), auth(' secret'), auth('secret alice')],
  },
  {
    name: "a password holding ':' logs in",
    steps: (key) => [auth('bob pa:ss'), `get ${key('a')}\r\n`],
  },
  {
    name: 'a password holding a space cannot be sent as text',
    steps: () => [auth('carol two words'), auth('carol two')],
  },
  {
    name: 'an empty password cannot be sent as text',
    steps: () => [auth('dave '), auth('dave')],
  },
  {
    name: 'extra tokens after the password are ignored, runs of spaces too',
    steps: (key) => [auth('  alice   secret  extra tokens'), `get ${key('a')}\r\n`],
  },
  {
    name: 'a tab is not a separator in the credentials',
    steps: () => [auth('alice\tsecret'), auth('alice secret\t')],
  },
  {
    name: 'a NUL ends the credentials early',
    steps: (key) => [auth('alice secret\0trailing'), `get ${key('a')}\r\n`],
  },
  {
    name: 'a carriage return before the CRLF belongs to the password',
    steps: () => [auth('alice secret\r')],
  },
  {
    name: 'an empty block is a bad token format',
    steps: () => [auth(''), auth('alice')],
  },
  {
    name: 'a block not ended by CRLF is a bad termination, and parsing resumes after it',
    steps: (key) => [`set ${key('login')} 0 0 3\r\n`, 'abcXY', `get ${key('a')}\r\n`, auth('alice secret')],
  },
  {
    name: 'the auth set ignores flags, exptime, noreply and its key',
    steps: (key) => [
      `set ${key('x')} notanumber -5 12 noreply\r\nalice secret\r\n`,
      `get ${key('x')}\r\n`,
    ],
  },
  {
    name: 'a bare LF ends the auth set line',
    steps: (key) => [`set ${key('x')} 0 0 12\nalice secret\r\n`, `get ${key('x')}\r\n`],
  },
  {
    name: 'commands pipelined behind the credentials run as ordinary commands',
    steps: (key) => [auth('alice secret') + set(key('a'), 'pipelined') + `get ${key('a')}\r\nversion\r\n`],
  },
  {
    name: 'after login an auth-shaped set is an ordinary set',
    steps: (key) => [auth('alice secret'), auth('alice secret', key('stored')), `get ${key('stored')}\r\n`],
  },
  {
    name: 'a credentials block filling 16 KiB exactly is read',
    steps: () => [`set k 0 0 16382\r\n`, 'a'.repeat(16382), '\r\n'],
  },
  {
    name: 'a line split over several writes is read whole',
    steps: () => ['se', 't k 0 0 1', '2\r\nalice ', 'secret', '\r', '\n', 'version\r\n'],
  },
];

const closings: AuthStreamCase[] = [
  {
    name: 'a line over 2048 bytes without a newline closes the connection',
    steps: () => ['x'.repeat(2049)],
    expectClose: true,
  },
  {
    name: 'a long get line is no exception before login',
    steps: () => [`get ${'k'.repeat(2100)}`],
    expectClose: true,
  },
  {
    name: 'a credentials block that cannot fit 16 KiB closes the connection once that much has come',
    steps: () => ['set k 0 0 16383\r\n', 'a'.repeat(16383), '\r\n'],
    expectClose: true,
  },
];

const streams = [...refusals, ...logins, ...closings];

describe(`text authentication: ${process.env[subjectEnvironmentVariable] ?? 'kai'} against memcached -Y`, () => {
  let directory: string;
  let reference: RunningServer;
  let subject: RunningServer;

  beforeAll(async () => {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-auth-differential-'));
    const authFile = path.join(directory, 'auth');
    fs.writeFileSync(authFile, authFileContent, { mode: 0o600 });
    const options: ServerOptions = {
      valueBytesMax,
      extraArgs: { memcached: ['-Y', authFile], kai: ['--auth-file', authFile] },
      readyCredentials: alice,
    };
    reference = await startMemcached(options);
    subject = await startSubject(options);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([reference?.stop(), subject?.stop()]);
    if (directory) fs.rmSync(directory, { recursive: true, force: true });
  }, 30_000);

  // Each stream, on its own connection and keys, gets the same replies from both servers.
  test.each(streams.map((stream, index) => [stream.name, stream, index] as const))(
    '%s',
    async (_name, stream, index) => {
      const prefix = `auth${index}_${Date.now().toString(36)}_`;
      const steps = stream.steps((name) => `${prefix}${name}`);
      const options = { expectClose: stream.expectClose, stepGapMs, credentials: alice };
      const expected = await runStream(reference.port, steps, options);
      const actual = await runStream(subject.port, steps, options);
      expect(actual.closed).toBe(expected.closed);
      expect(normalizeReplies(actual.bytes)).toEqual(normalizeReplies(expected.bytes));
    },
    60_000,
  );
});
