/**
 * A memcache text-protocol connection for fault tests: one request at a time on a kept socket,
 * every request bounded by a timeout that covers the connect too (behind a DROP rule even the
 * connect hangs). A request that times out, errors or meets a closed socket rejects and drops the
 * socket, since its byte stream may be out of step with its requests; the next request dials
 * again. Replies are parsed by their declared lengths, never by searching for `END`. Plain Node.
 */
import net from 'node:net';
import type { ReachableNode } from './cluster';

/** Longer than the coordinator's quorum wait (5 s), so its own failure answer arrives first. */
export const memcacheTimeoutMsDefault = 8_000;
/** A reply larger than this is not one these tests asked for. */
const replyBytesMax = 8 * 1024 * 1024;
/** Keys per multi-key get: a short request line, and a reply well under replyBytesMax. */
export const keysPerGetMax = 50;

/** Values (one per sibling) of each key a get found; keys it did not find are absent. */
export type Retrieved = Map<string, string[]>;

/** Where a retrieval reply ends, and what it holds; undefined while incomplete. */
type Parsed<T> = { readonly value: T } | { readonly error: string } | undefined;

const errorLine = /^(ERROR|SERVER_ERROR [^\r\n]*|CLIENT_ERROR [^\r\n]*)\r\n/;

/** Parses `VALUE <key> <flags> <bytes>\r\n<data>\r\n ... END\r\n` by the declared byte counts. */
export function parseRetrieval(received: string): Parsed<Retrieved> {
  const values: Retrieved = new Map();
  let offset = 0;
  for (;;) {
    const rest = received.slice(offset);
    if (rest.startsWith('END\r\n')) return offset + 5 === received.length ? { value: values } : { error: `bytes after END: ${JSON.stringify(received)}` };
    const failed = errorLine.exec(rest);
    if (failed !== null) return { error: failed[1] };
    const lineEnd = rest.indexOf('\r\n');
    if (lineEnd < 0) return undefined;
    const header = /^VALUE (\S+) (\d+) (\d+)(?: \d+)?$/.exec(rest.slice(0, lineEnd));
    if (header === null) return { error: `unexpected line ${JSON.stringify(rest.slice(0, lineEnd))}` };
    const bytes = Number(header[3]);
    const dataStart = lineEnd + 2;
    if (rest.length < dataStart + bytes + 2) return undefined;
    if (rest.slice(dataStart + bytes, dataStart + bytes + 2) !== '\r\n') return { error: `value of ${header[1]} not followed by CRLF` };
    const list = values.get(header[1]) ?? [];
    list.push(rest.slice(dataStart, dataStart + bytes));
    values.set(header[1], list);
    offset += dataStart + bytes + 2;
  }
}

/** One line answers a storage or delete command. */
function parseLine(received: string): Parsed<string> {
  const end = received.indexOf('\r\n');
  if (end < 0) return undefined;
  if (end + 2 !== received.length) return { error: `bytes after the reply line: ${JSON.stringify(received)}` };
  return { value: received.slice(0, end) };
}

/** `STAT <name> <value>` lines up to `END`. */
function parseStats(received: string): Parsed<Map<string, string>> {
  if (!received.endsWith('END\r\n')) {
    const failed = errorLine.exec(received);
    return failed === null ? undefined : { error: failed[1] };
  }
  const stats = new Map<string, string>();
  for (const line of received.slice(0, -5).split('\r\n')) {
    if (line === '') continue;
    const match = /^STAT (\S+) (.*)$/.exec(line);
    if (match === null) return { error: `unexpected stats line ${JSON.stringify(line)}` };
    stats.set(match[1], match[2]);
  }
  return { value: stats };
}

export class MemcacheConnection {
  private socket: net.Socket | undefined;
  private busy = false;

  constructor(
    readonly node: ReachableNode,
    readonly timeoutMs = memcacheTimeoutMsDefault,
  ) {}

  /** Sends `request` and resolves with what `parse` makes of the reply; rejects on timeout, error or an error reply. */
  private request<T>(request: string, parse: (received: string) => Parsed<T>, timeoutMs = this.timeoutMs): Promise<T> {
    if (this.busy) throw new Error(`assertion failed: one request at a time on a connection to ${this.node.id}`);
    this.busy = true;
    const socket = this.socket ?? this.dial();
    return new Promise<T>((resolve, reject) => {
      let received = '';
      const settle = (outcome: { value: T } | { error: Error }, keepSocket: boolean): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
        if (!keepSocket) this.drop(socket);
        this.busy = false;
        if ('value' in outcome) resolve(outcome.value);
        else reject(outcome.error);
      };
      const where = `${this.node.address}:${this.node.memcachePort}`;
      const timer = setTimeout(
        () => settle({ error: new Error(`no complete reply from ${where} within ${timeoutMs} ms; received ${JSON.stringify(received.slice(0, 200))}`) }, false),
        timeoutMs,
      );
      const onData = (chunk: Buffer): void => {
        received += chunk.toString('latin1');
        if (received.length > replyBytesMax) return settle({ error: new Error(`reply from ${where} over ${replyBytesMax} bytes`) }, false);
        const parsed = parse(received);
        if (parsed === undefined) return;
        // An error reply is a complete reply: the stream stays aligned.
        if ('error' in parsed) settle({ error: new Error(`${where} answered ${parsed.error}`) }, true);
        else settle({ value: parsed.value }, true);
      };
      const onClose = (): void => settle({ error: new Error(`connection to ${where} closed; received ${JSON.stringify(received.slice(0, 200))}`) }, false);
      const onError = (error: Error): void => settle({ error: new Error(`connection to ${where}: ${error.message}`) }, false);
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.once('error', onError);
      // Written once connected; net buffers the write until then.
      socket.write(Buffer.from(request, 'latin1'));
    });
  }

  private dial(): net.Socket {
    const socket = net.connect({ host: this.node.address, port: this.node.memcachePort });
    socket.setNoDelay(true);
    // Errors between requests are seen as a closed socket by the next one.
    socket.on('error', () => undefined);
    socket.once('close', () => {
      if (this.socket === socket) this.socket = undefined;
    });
    this.socket = socket;
    return socket;
  }

  private drop(socket: net.Socket): void {
    socket.destroy();
    if (this.socket === socket) this.socket = undefined;
  }

  close(): void {
    if (this.socket !== undefined) this.drop(this.socket);
  }

  /** `set`; resolves with the reply line (STORED), rejects on anything else. */
  async set(key: string, value: string, exptimeSeconds = 0): Promise<string> {
    const line = await this.request(`set ${key} 0 ${exptimeSeconds} ${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n`, parseLine);
    if (line !== 'STORED') throw new Error(`set ${key} through ${this.node.id} answered ${line}`);
    return line;
  }

  /** `delete`; resolves with DELETED or NOT_FOUND, rejects on anything else. */
  async delete(key: string): Promise<'DELETED' | 'NOT_FOUND'> {
    const line = await this.request(`delete ${key}\r\n`, parseLine);
    if (line !== 'DELETED' && line !== 'NOT_FOUND') throw new Error(`delete ${key} through ${this.node.id} answered ${line}`);
    return line;
  }

  /** `add`; resolves with STORED or NOT_STORED, rejects on anything else. */
  async add(key: string, value: string): Promise<'STORED' | 'NOT_STORED'> {
    const line = await this.request(`add ${key} 0 0 ${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n`, parseLine);
    if (line !== 'STORED' && line !== 'NOT_STORED') throw new Error(`add ${key} through ${this.node.id} answered ${line}`);
    return line;
  }

  /** `incr` or `decr`; resolves with the number, or NOT_FOUND; rejects on anything else. */
  async arith(key: string, delta: number | bigint, incr = true): Promise<bigint | 'NOT_FOUND'> {
    const line = await this.request(`${incr ? 'incr' : 'decr'} ${key} ${delta}\r\n`, parseLine);
    if (line === 'NOT_FOUND') return line;
    if (!/^[0-9]+$/.test(line)) throw new Error(`${incr ? 'incr' : 'decr'} ${key} through ${this.node.id} answered ${line}`);
    return BigInt(line);
  }

  /** A multi-key `get` of at most keysPerGetMax keys: every sibling's value per key found. */
  get(keys: readonly string[]): Promise<Retrieved> {
    if (keys.length === 0 || keys.length > keysPerGetMax) throw new Error(`assertion failed: a get names 1 to ${keysPerGetMax} keys`);
    return this.request(`get ${keys.join(' ')}\r\n`, parseRetrieval);
  }

  /** `stats <group>` as a map. */
  stats(group = ''): Promise<Map<string, string>> {
    return this.request(group === '' ? 'stats\r\n' : `stats ${group}\r\n`, parseStats);
  }
}

/** `stats kai` of `node`, on a connection of its own. */
export async function kaiStatsOf(node: ReachableNode, timeoutMs = memcacheTimeoutMsDefault): Promise<Map<string, string>> {
  const connection = new MemcacheConnection(node, timeoutMs);
  try {
    return await connection.stats('kai');
  } finally {
    connection.close();
  }
}

/**
 * Connections readAll uses at once: each multi-key get is keysPerGetMax quorum reads, each asking
 * N replicas, so two keep a node busy without flooding it (a node whose event loop stalls for a
 * second marks its peers down, and answers reads from fallbacks).
 */
const readConnectionsDefault = 2;

/**
 * Reads every key through `node` with multi-key gets on `connections` connections at once;
 * each batch is tried up to `attemptsMax` times (a read may meet a quorum not yet formed).
 * Throws naming the first batch that never succeeded.
 */
export async function readAll(
  node: ReachableNode,
  keys: readonly string[],
  options: { readonly connections?: number; readonly attemptsMax?: number } = {},
): Promise<Retrieved> {
  const batches: string[][] = [];
  for (let start = 0; start < keys.length; start += keysPerGetMax) batches.push(keys.slice(start, start + keysPerGetMax));
  const found: Retrieved = new Map();
  const attemptsMax = options.attemptsMax ?? 3;
  let next = 0;
  const worker = async (): Promise<void> => {
    const connection = new MemcacheConnection(node);
    try {
      while (next < batches.length) {
        const batch = batches[next++];
        let lastError: unknown;
        let done = false;
        for (let attempt = 0; attempt < attemptsMax && !done; attempt++) {
          try {
            for (const [key, values] of await connection.get(batch)) found.set(key, values);
            done = true;
          } catch (error) {
            lastError = error;
          }
        }
        if (!done) throw new Error(`get of ${batch.length} keys (${batch[0]} ...) through ${node.id} failed ${attemptsMax} times: ${String(lastError)}`);
      }
    } finally {
      connection.close();
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.connections ?? readConnectionsDefault, batches.length) }, worker));
  return found;
}
