/**
 * Differential testing against Debian's memcached: start the reference server and the server under
 * test, play the same byte stream to each over a raw socket, and compare what comes back once the
 * parts that legitimately differ (cas uniques, version strings, stats values) are masked.
 *
 *   const reference = await startMemcached({ valueBytesMax });
 *   const subject = await startSubject({ valueBytesMax });   // kai, a kai cluster, or a second memcached
 *   const expected = await runStream(reference.port, steps);
 *   const actual = await runStream(subject.port, steps);
 *   expect(normalizeReplies(actual.bytes)).toEqual(normalizeReplies(expected.bytes));
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startKai } from '../support/process';
import { delay, getFreePort, spawnServer, textAuthRequest, type TextCredentials } from '../support/servers';
import { startKaiCluster } from './cluster-subject';

export const memcachedBin = '/usr/bin/memcached';
/** Which server the differential tests compare with memcached: kai unless the environment says otherwise. */
export const subjectEnvironmentVariable = 'KAI_DIFFERENTIAL_SUBJECT';

const exitTimeoutMs = 10_000;
/** How long a stream may take to answer its sentinel, or to close when it is expected to. */
export const streamReplyTimeoutMs = 10_000;
/** Pause between steps, so that each step reaches the server as its own read. */
export const stepGapMsDefault = 15;
/** Reply bytes kept per stream: a runaway server cannot fill the test's memory. */
export const transcriptBytesMax = 16 * 1024 * 1024;

export interface RunningServer {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** The largest value both servers accept (memcached's -I, kai's --max-item-size). */
  readonly valueBytesMax: number;
  /** More arguments for each kind of server, after its usual ones (memcached's -Y, kai's --auth-file). */
  readonly extraArgs?: { readonly memcached?: readonly string[]; readonly kai?: readonly string[] };
  /** When the extra arguments demand authentication: credentials the readiness probe logs in with. */
  readonly readyCredentials?: TextCredentials;
}

/** Starts /usr/bin/memcached on a free port: one thread, no UDP, loopback only. */
export async function startMemcached(options: ServerOptions): Promise<RunningServer> {
  if (!fs.existsSync(memcachedBin)) {
    throw new Error(`${memcachedBin} is missing: run test/support/ensure-memcached.sh`);
  }
  const port = await getFreePort();
  const args = ['-p', String(port), '-U', '0', '-l', '127.0.0.1', '-t', '1', '-I', String(options.valueBytesMax)];
  // memcached refuses to run as root unless told which user to be.
  if (process.getuid?.() === 0) args.push('-u', os.userInfo().username);
  args.push(...(options.extraArgs?.memcached ?? []));
  const server = await spawnServer({
    label: 'memcached',
    command: memcachedBin,
    args,
    readyPort: port,
    readyCredentials: options.readyCredentials,
  });
  return {
    name: 'memcached',
    port,
    pid: server.pid,
    stop: async () => {
      await server.stop('SIGTERM', exitTimeoutMs);
    },
  };
}

/** Starts a single kai node (N = R = W = 1) in a fresh data directory. */
export async function startKaiNode(options: ServerOptions): Promise<RunningServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-differential-'));
  const kai = await startKai({
    dataDir,
    args: [
      ...['--n', '1', '--r', '1', '--w', '1', '--log-level', 'warn', '--max-item-size', String(options.valueBytesMax)],
      ...(options.extraArgs?.kai ?? []),
    ],
    readyCredentials: options.readyCredentials,
  });
  return {
    name: 'kai',
    port: kai.memcachePort,
    pid: kai.pid,
    stop: async () => {
      await kai.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The kinds of server the differential tests can play their streams to. */
export const subjectKinds = ['kai', 'kai-cluster', 'memcached'] as const;
export type SubjectKind = (typeof subjectKinds)[number];

/**
 * Which server a suite plays its streams to: KAI_DIFFERENTIAL_SUBJECT when set (so `memcached`
 * checks the streams themselves against a second memcached), else the suite's own choice.
 */
export function chosenSubject(preferred: SubjectKind = 'kai'): SubjectKind {
  const chosen = process.env[subjectEnvironmentVariable] ?? preferred;
  const kind = subjectKinds.find((candidate) => candidate === chosen);
  if (kind === undefined) throw new Error(`${subjectEnvironmentVariable} must be one of ${subjectKinds.join(', ')}, not ${chosen}`);
  return kind;
}

/**
 * The server under test: a single kai node (default), a 3-node kai cluster reached through one of
 * its nodes, or a second memcached, as chosenSubject decides.
 */
export function startSubject(options: ServerOptions, preferred: SubjectKind = 'kai'): Promise<RunningServer> {
  const kind = chosenSubject(preferred);
  if (kind === 'memcached') return startMemcached(options);
  if (kind === 'kai-cluster') return startKaiCluster(options);
  return startKaiNode(options);
}

/**
 * A line written into the transcript, not to the server, after waiting `waitMs`: it shows which
 * replies had arrived by then, for streams where when a reply comes matters (memcached answers an
 * over-size value only once its block has arrived). Place it where no reply is half received.
 */
export interface ReplyMark {
  readonly mark: string;
  readonly waitMs?: number;
}

/** How long a mark waits by default: ample for a reply that is due to come. */
export const markWaitMsDefault = 200;

/**
 * One step of a stream: bytes to send as their own write, a function of the replies so far
 * (for a `cas` that needs the unique a `gets` returned), run once every earlier reply is in, or a
 * mark in the transcript.
 */
export type StreamStep = string | Buffer | ((repliesSoFar: Buffer) => string | Buffer) | ReplyMark;

/**
 * A step that sends nothing once every earlier reply is in: the next step then reaches the server
 * after those replies have left it, whatever the load (a fixed gap between writes does not ensure
 * that, and memcached discards replies still unsent when some commands fail).
 */
export const awaitReplies: StreamStep = () => Buffer.alloc(0);

function isMark(step: StreamStep): step is ReplyMark {
  return typeof step === 'object' && !Buffer.isBuffer(step);
}

export interface Transcript {
  /** Every reply byte, sentinels removed. */
  readonly bytes: Buffer;
  /** Whether the server closed the connection. */
  readonly closed: boolean;
}

export interface RunOptions {
  /** The stream ends with the server closing the connection (quit, over-long line): wait for that. */
  readonly expectClose?: boolean;
  readonly stepGapMs?: number;
  /**
   * For a server with an auth file: sentinels authenticate first, so they get the same replies
   * whether or not the stream has logged in. A computed step's sentinel therefore logs the
   * connection in: use computed steps only after a stream has authenticated.
   */
  readonly credentials?: TextCredentials;
  /** The protocol the stream speaks, and so the sentinel that marks its end: text by default. */
  readonly protocol?: 'text' | 'binary';
}

function toBuffer(data: string | Buffer): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
}

/**
 * A marker command pair with a reply no stream produces: a set and get of a key named by a random
 * nonce. Its reply arriving means every earlier reply has arrived. With credentials an auth `set`
 * goes first: it answers STORED both before login (it logs in) and after (it stores a value).
 */
function makeSentinel(credentials?: TextCredentials): { request: Buffer; reply: Buffer } {
  const nonce = randomBytes(8).toString('hex');
  const key = `sentinel_${nonce}`;
  const login = credentials === undefined ? '' : textAuthRequest(credentials, `${key}_login`);
  return {
    request: Buffer.from(`${login}set ${key} 0 0 ${nonce.length}\r\n${nonce}\r\nget ${key}\r\n`),
    reply: Buffer.from(`${login === '' ? '' : 'STORED\r\n'}STORED\r\nVALUE ${key} 0 ${nonce.length}\r\n${nonce}\r\nEND\r\n`),
  };
}

/**
 * The binary protocol's marker: a NOOP whose opaque is a random nonce. Its response (the NOOP
 * header echoing that opaque) arriving means every earlier response has arrived.
 */
function makeBinarySentinel(): { request: Buffer; reply: Buffer } {
  const request = Buffer.alloc(24);
  request[0] = 0x80;
  request[1] = 0x0a;
  randomBytes(4).copy(request, 12);
  const reply = Buffer.from(request);
  reply[0] = 0x81;
  return { request, reply };
}

/** A connection that records what the server sends and can wait for a suffix or for the close. */
class RecordingConnection {
  private readonly socket: net.Socket;
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private closedFlag = false;
  private readonly waiters = new Set<() => void>();

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      if (this.receivedBytes + chunk.length <= transcriptBytesMax) {
        this.received.push(chunk);
        this.receivedBytes += chunk.length;
      }
      this.wake();
    });
    // A reset (memcached closing with unread input) counts as a close.
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closedFlag = true;
      this.wake();
    });
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  write(data: Buffer): void {
    if (!this.closedFlag) this.socket.write(data);
  }

  /** Records `line` as if the server had sent it now. */
  mark(line: string): void {
    const marker = Buffer.from(`${line}\r\n`, 'latin1');
    this.received.push(marker);
    this.receivedBytes += marker.length;
  }

  /** Waits until the replies end with `suffix`, then removes it from the record. */
  async awaitSuffix(suffix: Buffer, what: string): Promise<void> {
    await this.until(() => this.closedFlag || this.bytes().subarray(-suffix.length).equals(suffix), what);
    const all = this.bytes();
    if (!all.subarray(-suffix.length).equals(suffix)) {
      throw new Error(`connection closed before ${what}; replies so far: ${JSON.stringify(all.toString('latin1'))}`);
    }
    this.received = [all.subarray(0, all.length - suffix.length)];
    this.receivedBytes -= suffix.length;
  }

  awaitClose(): Promise<void> {
    return this.until(() => this.closedFlag, 'the server closing the connection');
  }

  destroy(): void {
    this.socket.destroy();
  }

  private until(condition: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!condition()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const so = JSON.stringify(this.bytes().toString('latin1').slice(0, 2000));
        reject(new Error(`no ${what} within ${streamReplyTimeoutMs} ms; replies so far: ${so}`));
      }, streamReplyTimeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** Plays `steps` on a fresh connection to 127.0.0.1:port and returns every reply byte. */
export async function runStream(port: number, steps: readonly StreamStep[], options: RunOptions = {}): Promise<Transcript> {
  const connection = new RecordingConnection(port);
  try {
    await connection.connected();
    const gapMs = options.stepGapMs ?? stepGapMsDefault;
    const makeMarker = (): { request: Buffer; reply: Buffer } =>
      options.protocol === 'binary' ? makeBinarySentinel() : makeSentinel(options.credentials);
    for (const step of steps) {
      if (isMark(step)) {
        await delay(step.waitMs ?? markWaitMsDefault);
        connection.mark(step.mark);
      } else if (typeof step === 'function') {
        const sentinel = makeMarker();
        connection.write(sentinel.request);
        await connection.awaitSuffix(sentinel.reply, 'the replies a computed step depends on');
        connection.write(toBuffer(step(connection.bytes())));
      } else {
        connection.write(toBuffer(step));
      }
      await delay(gapMs);
    }
    if (options.expectClose) {
      await connection.awaitClose();
    } else {
      const sentinel = makeMarker();
      connection.write(sentinel.request);
      await connection.awaitSuffix(sentinel.reply, 'the end-of-stream sentinel');
    }
    return { bytes: connection.bytes(), closed: connection.closed };
  } finally {
    connection.destroy();
  }
}

/** The cas unique of the last `VALUE` line with one, for steps that must name it. */
export function lastCasUnique(replies: Buffer): string {
  const matches = [...replies.toString('latin1').matchAll(/^VALUE \S+ \d+ \d+ (\d+)\r$/gm)];
  const last = matches.at(-1);
  if (!last) throw new Error(`no cas unique in ${JSON.stringify(replies.toString('latin1'))}`);
  return last[1];
}

/** A reply line with what may differ masked, and the length of the data block after it, if any. */
export interface MaskedLine {
  readonly text: string;
  readonly dataBytes?: number;
}

/**
 * Masks one reply line, given split at its spaces, or answers undefined when the line is not of
 * the rule's kind. `casName` turns a cas unique into `<cas1>`, `<cas2>`, ... by order of first
 * appearance in the transcript, so equal uniques stay equal whichever line names them.
 */
export type ReplyLineRule = (parts: readonly string[], casName: (unique: string) => string) => MaskedLine | undefined;

/** The classic text protocol's lines that carry values servers legitimately differ in. */
const classicReplyRules: readonly ReplyLineRule[] = [
  (parts, casName) => {
    if (parts[0] !== 'VALUE' || (parts.length !== 4 && parts.length !== 5) || !/^\d+$/.test(parts[3])) return undefined;
    const masked = parts.length === 5 ? [...parts.slice(0, 4), casName(parts[4])] : parts;
    return { text: masked.join(' '), dataBytes: Number(parts[3]) };
  },
  (parts) => (parts[0] === 'VERSION' ? { text: 'VERSION <version>' } : undefined),
  (parts) => (parts[0] === 'STAT' && parts.length >= 3 ? { text: `STAT ${parts[1]} <value>` } : undefined),
];

/**
 * The replies as text with what may differ between servers masked: cas uniques become `<cas1>`,
 * `<cas2>`, ... in order of first appearance (so equal uniques stay equal), the version string
 * becomes `<version>` and stats values `<value>`. Data blocks are skipped by their length, so a
 * value that itself looks like a reply line is left alone. `extraRules` mask the lines of another
 * dialect (the meta commands) the same way, after the classic ones.
 */
export function normalizeReplies(bytes: Buffer, extraRules: readonly ReplyLineRule[] = []): string {
  const casNames = new Map<string, string>();
  const casName = (unique: string): string => {
    if (!casNames.has(unique)) casNames.set(unique, `<cas${casNames.size + 1}>`);
    return casNames.get(unique) ?? '';
  };
  const rules = [...classicReplyRules, ...extraRules];
  const out: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n', at);
    if (end < 0) {
      out.push(`<partial>${bytes.toString('latin1', at)}`);
      break;
    }
    const line = bytes.toString('latin1', at, end);
    at = end + 2;
    const parts = line.split(' ');
    const masked = maskLine(parts, rules, casName) ?? { text: line };
    out.push(masked.text);
    if (masked.dataBytes !== undefined) {
      out.push(`<data>${bytes.toString('latin1', at, at + masked.dataBytes + 2)}`);
      at += masked.dataBytes + 2;
    }
  }
  return out.join('\n');
}

/** Statistics kai adds to memcached's general group: its own release beside the protocol version. */
export const kaiOnlyStatistics: ReadonlySet<string> = new Set(['kai_version']);

/** The subject's statistic names that memcached does not answer, kai's own additions aside. */
export function namesMemcachedLacks(subjectNames: readonly string[], memcachedNames: readonly string[]): string[] {
  const known = new Set(memcachedNames);
  return subjectNames.filter((name) => !known.has(name) && !kaiOnlyStatistics.has(name));
}

/** What the first rule that knows the line makes of it. */
function maskLine(parts: readonly string[], rules: readonly ReplyLineRule[], casName: (unique: string) => string): MaskedLine | undefined {
  for (const rule of rules) {
    const masked = rule(parts, casName);
    if (masked !== undefined) return masked;
  }
  return undefined;
}

/** A stats reply's shape: `STAT <name> <value>` lines then END, or why it is not one. */
export function parseStatsReply(bytes: Buffer): { readonly names: string[] } | { readonly problem: string } {
  const text = bytes.toString('latin1');
  if (!text.endsWith('END\r\n')) return { problem: `does not end with END: ${JSON.stringify(text.slice(-200))}` };
  const lines = text.slice(0, -'END\r\n'.length).split('\r\n');
  if (lines.at(-1) === '') lines.pop();
  const names: string[] = [];
  for (const line of lines) {
    const match = /^STAT (\S+) (.*)$/.exec(line);
    if (!match) return { problem: `not a STAT line: ${JSON.stringify(line)}` };
    names.push(match[1]);
  }
  return { names };
}

/**
 * Binary responses as text, one line per packet, with what may differ between servers masked: cas
 * values other than 0 become `<cas1>`, `<cas2>`, ... in order of first appearance, the VERSION
 * body becomes `<version>` and STAT values `<value>`. Bytes after the last whole packet are shown
 * as `<partial>`.
 */
export function normalizeBinaryReplies(bytes: Buffer): string {
  const casNames = new Map<bigint, string>();
  const out: string[] = [];
  let at = 0;
  while (bytes.length - at >= 24) {
    const opcode = bytes[at + 1];
    const keyLength = bytes.readUInt16BE(at + 2);
    const extrasLength = bytes[at + 4];
    const bodyLength = bytes.readUInt32BE(at + 8);
    if (bytes.length - at < 24 + bodyLength) break;
    const cas = bytes.readBigUInt64BE(at + 16);
    if (cas !== 0n && !casNames.has(cas)) casNames.set(cas, `<cas${casNames.size + 1}>`);
    const body = bytes.subarray(at + 24, at + 24 + bodyLength);
    const key = body.subarray(extrasLength, extrasLength + keyLength);
    let value = JSON.stringify(body.subarray(extrasLength + keyLength).toString('latin1'));
    if (opcode === 0x0b) value = '<version>';
    if (opcode === 0x10 && keyLength > 0) value = '<value>';
    const fields = [
      `magic=${bytes[at].toString(16)}`,
      `op=${opcode.toString(16)}`,
      `status=${bytes.readUInt16BE(at + 6).toString(16)}`,
      `type=${bytes[at + 5]}`,
      `opaque=${bytes.readUInt32BE(at + 12)}`,
      `cas=${cas === 0n ? '0' : casNames.get(cas)}`,
      `extras=${body.subarray(0, extrasLength).toString('hex')}`,
      `key=${JSON.stringify(key.toString('latin1'))}`,
      `value=${value}`,
    ];
    out.push(fields.join(' '));
    at += 24 + bodyLength;
  }
  if (at < bytes.length) out.push(`<partial>${bytes.subarray(at).toString('hex')}`);
  return out.join('\n');
}

/** The cas of the last binary response carrying one, for steps that must name it. */
export function lastBinaryCas(replies: Buffer): bigint {
  let at = 0;
  let last = 0n;
  while (replies.length - at >= 24) {
    const bodyLength = replies.readUInt32BE(at + 8);
    const cas = replies.readBigUInt64BE(at + 16);
    if (cas !== 0n) last = cas;
    at += 24 + bodyLength;
  }
  if (last === 0n) throw new Error('no cas in the binary replies so far');
  return last;
}
