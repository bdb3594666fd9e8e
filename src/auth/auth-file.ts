/**
 * The auth file, in memcached's `-Y` format: one `user:password` per line. The user ends at the
 * first ':' and the password is the rest of the line, so a password may hold ':' (and spaces,
 * which only SASL clients can send). Lines end with "\n" or "\r\n"; the last may lack it.
 *
 * Where memcached 1.6 reads such a file loosely, kai refuses it with a message naming the line:
 * memcached keeps only the first 8 entries and cuts a line past 255 bytes (ignoring the rest of
 * the file), both silently; kai accepts up to `authEntriesMax` entries of up to `authLineBytesMax`
 * bytes and rejects anything longer. A file memcached reads in full, kai reads the same way: a
 * blank line or a line without ':' is an error in both, and an empty file lets nobody in.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { oneLineMessage } from '../config/fields';
import type { Authenticator } from './index';

/** Entries a file may hold: enough for every service of a deployment, small enough to scan on each login. */
export const authEntriesMax = 1024;
/** Longest line, without its line ending: the longest memcached reads whole (its 256-byte buffer). */
export const authLineBytesMax = 254;
/** Largest file read: every entry at full length with a CRLF. Checked before the file is read. */
export const authFileBytesMax = authEntriesMax * (authLineBytesMax + 2);

const newline = 0x0a;
const carriageReturn = 0x0d;
const colon = 0x3a;
const nul = 0x00;

export interface AuthEntry {
  readonly user: Buffer;
  readonly password: Buffer;
}

/** A file that cannot be used; `message` is one line naming the file and, when known, the line. */
export class AuthFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthFileError';
  }
}

/** The entries of an auth file's content; throws AuthFileError naming the first bad line. */
export function parseAuthFile(content: Buffer, fileName = 'auth file'): AuthEntry[] {
  if (content.length > authFileBytesMax) {
    throw new AuthFileError(`${fileName}: larger than ${authFileBytesMax} bytes`);
  }
  const entries: AuthEntry[] = [];
  let start = 0;
  let lineNumber = 0;
  while (start < content.length) {
    lineNumber++;
    let end = content.indexOf(newline, start);
    const next = end < 0 ? content.length : end + 1;
    if (end < 0) end = content.length;
    if (end > start && content[end - 1] === carriageReturn) end--;
    const where = `${fileName}: line ${lineNumber}`;
    entries.push(parseEntry(content.subarray(start, end), where));
    if (entries.length > authEntriesMax) {
      throw new AuthFileError(`${fileName}: more than ${authEntriesMax} entries`);
    }
    start = next;
  }
  return entries;
}

function parseEntry(line: Buffer, where: string): AuthEntry {
  if (line.length > authLineBytesMax) {
    throw new AuthFileError(`${where}: longer than ${authLineBytesMax} bytes`);
  }
  if (line.includes(nul) || line.includes(carriageReturn)) {
    throw new AuthFileError(`${where}: holds a NUL or a carriage return, should be 'user:password'`);
  }
  const separator = line.indexOf(colon);
  if (separator < 0) {
    const problem = line.length === 0 ? 'is blank' : "has no ':'";
    throw new AuthFileError(`${where}: ${problem}, should be 'user:password'`);
  }
  return { user: Buffer.from(line.subarray(0, separator)), password: Buffer.from(line.subarray(separator + 1)) };
}

/**
 * Reads and parses an auth file. The size is checked on the open file before anything is read,
 * and the read itself stops one byte past the cap, so a file growing meanwhile is still bounded.
 */
export function readAuthFile(file: string): AuthEntry[] {
  let descriptor: number;
  try {
    descriptor = fs.openSync(file, 'r');
  } catch (error) {
    throw new AuthFileError(`cannot read auth file ${file}: ${oneLineMessage(error)}`);
  }
  try {
    const stat = fs.fstatSync(descriptor);
    if (!stat.isFile()) throw new AuthFileError(`auth file ${file} is not a regular file`);
    if (stat.size > authFileBytesMax) throw new AuthFileError(`auth file ${file}: larger than ${authFileBytesMax} bytes`);
    const buffer = Buffer.alloc(authFileBytesMax + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const read = fs.readSync(descriptor, buffer, filled, buffer.length - filled, null);
      if (read === 0) break;
      filled += read;
    }
    return parseAuthFile(buffer.subarray(0, filled), `auth file ${file}`);
  } catch (error) {
    if (error instanceof AuthFileError) throw error;
    throw new AuthFileError(`cannot read auth file ${file}: ${oneLineMessage(error)}`);
  } finally {
    fs.closeSync(descriptor);
  }
}

/**
 * A set of credentials checked without leaking, through timing, which users exist or how much of
 * a password matched. Each user and password is kept as an HMAC digest under a key drawn at
 * start: digests have a fixed length, so comparing them with timingSafeEqual costs the same
 * whatever was sent, and every entry is compared on every check, with no early exit, so an
 * unknown user costs as much as a known one.
 */
export class CredentialSet {
  private readonly digestKey = randomBytes(32);
  private readonly entries: readonly { readonly user: Buffer; readonly password: Buffer }[];

  constructor(entries: readonly AuthEntry[]) {
    this.entries = entries.map((entry) => ({ user: this.digest(entry.user), password: this.digest(entry.password) }));
  }

  get size(): number {
    return this.entries.length;
  }

  verify(user: Buffer, password: Buffer): boolean {
    const userDigest = this.digest(user);
    const passwordDigest = this.digest(password);
    let matched = 0;
    for (const entry of this.entries) {
      // Both comparisons run for every entry; `&` and `|` keep evaluation free of branches.
      const userMatches = Number(timingSafeEqual(userDigest, entry.user));
      const passwordMatches = Number(timingSafeEqual(passwordDigest, entry.password));
      matched |= userMatches & passwordMatches;
    }
    return matched === 1;
  }

  private digest(bytes: Buffer): Buffer {
    return createHmac('sha256', this.digestKey).update(bytes).digest();
  }
}

export type ReloadOutcome =
  | { readonly ok: true; readonly entries: number }
  | { readonly ok: false; readonly reason: string };

/** An authenticator backed by an auth file: read at start, read again on `reload()`. */
export class FileAuthenticator implements Authenticator {
  readonly required = true;
  private credentials: CredentialSet;

  /** Throws AuthFileError when the file cannot be read or parsed. */
  constructor(readonly file: string) {
    this.credentials = new CredentialSet(readAuthFile(file));
  }

  get entries(): number {
    return this.credentials.size;
  }

  verify(user: Buffer, password: Buffer): boolean {
    return this.credentials.verify(user, password);
  }

  /**
   * Reads the file again. On any error the credentials in force stay as they are, as memcached
   * does, so a half-written or mistyped file never locks every client out.
   */
  reload(): ReloadOutcome {
    try {
      this.credentials = new CredentialSet(readAuthFile(this.file));
      return { ok: true, entries: this.credentials.size };
    } catch (error) {
      if (error instanceof AuthFileError) return { ok: false, reason: error.message };
      throw error;
    }
  }
}
