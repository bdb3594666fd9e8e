import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AuthFileError,
  CredentialSet,
  FileAuthenticator,
  authEntriesMax,
  authFileBytesMax,
  authLineBytesMax,
  parseAuthFile,
  readAuthFile,
  type AuthEntry,
} from '../../../src/auth/auth-file';
import { ConfigError, loadSettings } from '../../../src/config/load';

let directory: string;

beforeEach(() => {
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-auth-file-'));
});

afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(directory, { recursive: true, force: true });
});

function writeFile(content: string | Buffer, name = 'auth'): string {
  const file = path.join(directory, name);
  fs.writeFileSync(file, content);
  return file;
}

function pairs(entries: readonly AuthEntry[]): string[][] {
  return entries.map((entry) => [entry.user.toString('latin1'), entry.password.toString('latin1')]);
}

function parseErrorOf(content: string | Buffer): string {
  try {
    parseAuthFile(Buffer.from(content), 'auth');
  } catch (error) {
    if (error instanceof AuthFileError) return error.message;
    throw error;
  }
  throw new Error('expected an AuthFileError');
}

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('parseAuthFile', () => {
  test('reads user:password lines, the password being everything after the first colon', () => {
    // Proves the memcached -Y format: a ':' or a space in a password is part of it.
    expect(pairs(parseAuthFile(bytes('alice:secret\nbob:pa:ss\ncarol:two words\n')))).toEqual([
      ['alice', 'secret'],
      ['bob', 'pa:ss'],
      ['carol', 'two words'],
    ]);
  });

  test('accepts CRLF line ends, a last line without a newline, and a CR at the very end', () => {
    // Proves the line endings memcached accepts give the same entries.
    expect(pairs(parseAuthFile(bytes('a:1\r\nb:2\r\nc:3')))).toEqual([['a', '1'], ['b', '2'], ['c', '3']]);
    expect(pairs(parseAuthFile(bytes('a:1\r')))).toEqual([['a', '1']]);
  });

  test('an empty file holds no entries, and empty users or passwords are entries', () => {
    // Proves an empty file lets nobody in rather than being an error, as with memcached.
    expect(parseAuthFile(Buffer.alloc(0))).toEqual([]);
    expect(pairs(parseAuthFile(bytes(':nouser\nnopassword:\n')))).toEqual([['', 'nouser'], ['nopassword', '']]);
  });

  test('a blank line, even the last one, is an error naming its line', () => {
    // Proves kai refuses the files memcached refuses as malformed.
    expect(parseErrorOf('a:1\n\nb:2\n')).toBe("auth: line 2: is blank, should be 'user:password'");
    expect(parseErrorOf('a:1\nb:2\n\n')).toBe("auth: line 3: is blank, should be 'user:password'");
    expect(parseErrorOf('a:1\r\n\r\n')).toBe("auth: line 2: is blank, should be 'user:password'");
  });

  test('a line without a colon is an error', () => {
    // Proves a malformed entry is reported, never skipped.
    expect(parseErrorOf('alice\n')).toBe("auth: line 1: has no ':', should be 'user:password'");
  });

  test('NUL bytes and carriage returns inside a line are errors', () => {
    // Proves bytes memcached would read as an early end of the entry are refused instead.
    expect(parseErrorOf('a:b\0c\n')).toMatch(/^auth: line 1: holds a NUL/);
    expect(parseErrorOf('a:b\rc\n')).toMatch(/^auth: line 1: holds a NUL or a carriage return/);
  });

  test('a line may be authLineBytesMax bytes long, not one more', () => {
    // Proves the line cap, which memcached applies by silently cutting the password.
    const longest = `u:${'p'.repeat(authLineBytesMax - 2)}`;
    expect(pairs(parseAuthFile(bytes(`${longest}\n`)))[0][1]).toHaveLength(authLineBytesMax - 2);
    expect(parseErrorOf(`a:1\n${longest}p\n`)).toBe(`auth: line 2: longer than ${authLineBytesMax} bytes`);
  });

  test('a file may hold authEntriesMax entries, not one more', () => {
    // Proves the entry cap, which memcached applies by silently dropping entries past 8.
    const lines = Array.from({ length: authEntriesMax }, (_, index) => `user${index}:password${index}\n`);
    expect(parseAuthFile(bytes(lines.join('')))).toHaveLength(authEntriesMax);
    expect(parseErrorOf(`${lines.join('')}extra:1\n`)).toBe(`auth: more than ${authEntriesMax} entries`);
  });

  test('content over authFileBytesMax is refused before parsing', () => {
    // Proves the size cap holds even for content that would otherwise parse.
    expect(parseErrorOf(Buffer.alloc(authFileBytesMax + 1, 'a'))).toBe(`auth: larger than ${authFileBytesMax} bytes`);
  });
});

describe('readAuthFile', () => {
  test('a missing file is a one-line error naming it', () => {
    // Proves the message a node prints when it cannot start.
    const file = path.join(directory, 'missing');
    expect(() => readAuthFile(file)).toThrow(new AuthFileError(`cannot read auth file ${file}: ENOENT: no such file or directory, open '${file}'`));
  });

  test('a directory is not an auth file', () => {
    // Proves the file must be a regular file.
    expect(() => readAuthFile(directory)).toThrow(`auth file ${directory} is not a regular file`);
  });

  test('a file larger than the cap is refused by its size, before it is read', () => {
    // Proves a huge (here sparse) file is never buffered.
    const file = writeFile('');
    fs.truncateSync(file, 1024 * 1024 * 1024);
    const readSync = jest.spyOn(fs, 'readSync');
    expect(() => readAuthFile(file)).toThrow(`auth file ${file}: larger than ${authFileBytesMax} bytes`);
    expect(readSync).not.toHaveBeenCalled();
  });

  test('errors in the content name the file and the line', () => {
    // Proves the message points the operator at the line to fix.
    const file = writeFile('alice:secret\nbroken\n');
    expect(() => readAuthFile(file)).toThrow(`auth file ${file}: line 2: has no ':', should be 'user:password'`);
  });
});

describe('CredentialSet.verify', () => {
  const credentials = new CredentialSet(parseAuthFile(bytes('alice:secret\nbob:pa:ss\nalice:other\n')));

  test('accepts exactly the pairs in the file', () => {
    // Proves the result of each comparison, including near misses.
    expect(credentials.verify(bytes('alice'), bytes('secret'))).toBe(true);
    expect(credentials.verify(bytes('bob'), bytes('pa:ss'))).toBe(true);
    expect(credentials.verify(bytes('alice'), bytes('other'))).toBe(true);
    expect(credentials.verify(bytes('alice'), bytes('secre'))).toBe(false);
    expect(credentials.verify(bytes('alice'), bytes('secrets'))).toBe(false);
    expect(credentials.verify(bytes('alice'), bytes('pa:ss'))).toBe(false);
    expect(credentials.verify(bytes('bob'), bytes('secret'))).toBe(false);
    expect(credentials.verify(bytes('ALICE'), bytes('secret'))).toBe(false);
    expect(credentials.verify(bytes('mallory'), bytes('secret'))).toBe(false);
    expect(credentials.verify(bytes(''), bytes(''))).toBe(false);
  });

  test('an empty set accepts nobody', () => {
    // Proves an empty auth file locks every client out.
    expect(new CredentialSet([]).verify(bytes(''), bytes(''))).toBe(false);
  });

  test('does the same comparisons whether the user is known, unknown, or the password wrong', () => {
    // Proves timing cannot tell a known user from an unknown one: every entry is compared, in full.
    const timingSafeEqual = jest.spyOn(crypto, 'timingSafeEqual');
    const comparisonsFor = (user: string, password: string): number[] => {
      timingSafeEqual.mockClear();
      credentials.verify(bytes(user), bytes(password));
      return timingSafeEqual.mock.calls.map(([left, right]) => (left as Buffer).length + (right as Buffer).length);
    };
    const known = comparisonsFor('alice', 'secret');
    expect(known).toHaveLength(2 * credentials.size);
    expect(comparisonsFor('mallory', 'x'.repeat(100))).toEqual(known);
    expect(comparisonsFor('bob', 'wrong')).toEqual(known);
  });
});

describe('FileAuthenticator', () => {
  test('reload takes the new file, and keeps the old credentials when the new file is bad', () => {
    // Proves SIGHUP's contract: a good file replaces the credentials, a bad one changes nothing.
    const file = writeFile('alice:one\n');
    const authenticator = new FileAuthenticator(file);
    expect(authenticator.required).toBe(true);
    expect(authenticator.verify(bytes('alice'), bytes('one'))).toBe(true);

    fs.writeFileSync(file, 'alice:two\nbob:three\n');
    expect(authenticator.reload()).toEqual({ ok: true, entries: 2 });
    expect(authenticator.verify(bytes('alice'), bytes('one'))).toBe(false);
    expect(authenticator.verify(bytes('alice'), bytes('two'))).toBe(true);

    fs.writeFileSync(file, 'alice:four\nbroken\n');
    expect(authenticator.reload()).toEqual({ ok: false, reason: `auth file ${file}: line 2: has no ':', should be 'user:password'` });
    expect(authenticator.verify(bytes('alice'), bytes('two'))).toBe(true);
    expect(authenticator.verify(bytes('alice'), bytes('four'))).toBe(false);

    fs.rmSync(file);
    expect(authenticator.reload()).toMatchObject({ ok: false, reason: expect.stringMatching(/ENOENT/) });
    expect(authenticator.verify(bytes('bob'), bytes('three'))).toBe(true);
  });

  test('a bad file at construction throws', () => {
    // Proves a node cannot start with an auth file it would refuse.
    expect(() => new FileAuthenticator(writeFile('nobody\n'))).toThrow(AuthFileError);
  });
});

describe('the auth_file setting', () => {
  function configErrorOf(run: () => unknown): string {
    try {
      run();
    } catch (error) {
      if (error instanceof ConfigError) return error.message;
      throw error;
    }
    throw new Error('expected a ConfigError');
  }

  test('is absent by default and null in a config file means no authentication', () => {
    // Proves that without the setting nothing changes.
    expect(loadSettings({}, { cwd: directory }).authFile).toBeUndefined();
    const config = writeFile(JSON.stringify({ auth_file: null }), 'kai.config.json');
    expect(loadSettings({}, { cwd: directory, configFile: config }).authFile).toBeUndefined();
  });

  test('a relative --auth-file is resolved against the working directory and checked', () => {
    // Proves the flag reaches Settings as an absolute path once the file has parsed.
    writeFile('alice:secret\n', 'users');
    expect(loadSettings({ authFile: 'users' }, { cwd: directory }).authFile).toBe(path.join(directory, 'users'));
  });

  test('a missing, malformed or mistyped auth file is a one-line ConfigError', () => {
    // Proves a bad auth file stops the node before it starts, like any other setting.
    const missing = path.join(directory, 'missing');
    expect(configErrorOf(() => loadSettings({ authFile: missing }, { cwd: directory }))).toBe(
      `cannot read auth file ${missing}: ENOENT: no such file or directory, open '${missing}'`,
    );
    const malformed = writeFile('alice\n', 'malformed');
    expect(configErrorOf(() => loadSettings({ authFile: malformed }, { cwd: directory }))).toBe(
      `auth file ${malformed}: line 1: has no ':', should be 'user:password'`,
    );
    const config = writeFile(JSON.stringify({ auth_file: 7 }), 'kai.config.json');
    expect(configErrorOf(() => loadSettings({}, { cwd: directory, configFile: config }))).toBe(
      `${config}: "auth_file": must be a non-empty path, got 7`,
    );
  });
});
