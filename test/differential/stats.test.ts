/**
 * memcached's statistics and tooling commands against Debian's memcached: stats detail, stats
 * cachedump and lru_crawler metadump (errors and listings), stats conns, watch, verbosity and the
 * memory settings, with what legitimately differs masked (times, cas uniques, sizes, numbering).
 */
import { RawClient } from '../support/raw-client';
import { delay } from '../support/servers';
import { normalizeReplies, runStream, startMemcached, startSubject, subjectEnvironmentVariable, type RunningServer, type StreamStep } from './harness';

const valueBytesMax = 1024 * 1024;
const subjectName = process.env[subjectEnvironmentVariable] ?? 'kai';
/** Bounds the polls that wait for a server to show a state. */
const pollAttemptsMax = 200;
const pollGapMs = 25;

const set = (key: string, value: string, exptime = 0, flags = 0): string =>
  `set ${key} ${flags} ${exptime} ${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n`;

/** The replies as normalizeReplies shows them, each run of PREFIX lines sorted (memcached lists them in hash order). */
function normalizeDetail(bytes: Buffer): string {
  const lines = normalizeReplies(bytes).split('\n');
  const out: string[] = [];
  let run: string[] = [];
  for (const line of [...lines, '']) {
    if (line.startsWith('PREFIX ')) {
      run.push(line);
      continue;
    }
    out.push(...run.sort());
    run = [];
    out.push(line);
  }
  return out.join('\n');
}

/** A STAT value of the last block that has it. */
function statValue(bytes: Buffer, name: string): string | undefined {
  const matches = [...bytes.toString('latin1').matchAll(new RegExp(`^STAT ${name} (.*)\\r$`, 'gm'))];
  return matches.at(-1)?.[1];
}

/** Plays `steps` to both servers, one after the other. */
async function playBoth(servers: { reference: RunningServer; subject: RunningServer }, steps: readonly StreamStep[]) {
  const expected = await runStream(servers.reference.port, steps);
  const actual = await runStream(servers.subject.port, steps);
  return { expected: expected.bytes, actual: actual.bytes };
}

describe(`statistics and tooling: ${subjectName} against memcached`, () => {
  const servers = {} as { reference: RunningServer; subject: RunningServer };
  let streamIndex = 0;
  /** Keys of one test: a prefix of their own, so tests never see each other's items. */
  const namespace = (): string => `t${streamIndex++}_${Date.now().toString(36)}_`;

  beforeAll(async () => {
    servers.reference = await startMemcached({ valueBytesMax });
    servers.subject = await startSubject({ valueBytesMax });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([servers.reference?.stop(), servers.subject?.stop()]);
  }, 30_000);

  test('stats detail: usage, counts per prefix, off, reset', async () => {
    // Proves the per-prefix counters move as memcached's do, and that off stops and reset clears them.
    const ns = namespace();
    const key = (prefix: string, name: string): string => `${ns}${prefix}:${name}`;
    const steps: StreamStep[] = [
      'stats detail\r\nstats detail bogus\r\n',
      'stats detail on\r\n',
      set(key('p1', 'a'), 'A') + set(key('p1', 'b'), 'B') + set(key('p2', 'x'), 'X') + set(`${ns}plain`, 'P'),
      `get ${key('p1', 'a')} ${key('p1', 'missing')} ${key('p2', 'x')} ${ns}plain\r\n`,
      `delete ${key('p2', 'x')}\r\ndelete ${key('p3', 'gone')}\r\n`,
      `gat 0 ${key('p1', 'b')}\r\ntouch ${key('p1', 'a')} 0\r\nincr ${key('p4', 'n')} 1\r\n`,
      `set ${key('p5', 'big')} 0 0 ${valueBytesMax + 1}\r\n${'v'.repeat(valueBytesMax + 1)}\r\n`,
      'stats detail dump\r\n',
      'stats detail off\r\n',
      `get ${key('p1', 'a')}\r\n`,
      'stats detail dump\r\n',
      'stats reset\r\n',
      'stats detail dump\r\n',
    ];
    const { expected, actual } = await playBoth(servers, steps);
    expect(normalizeDetail(actual)).toEqual(normalizeDetail(expected));
    expect(expected.toString('latin1')).toContain(`PREFIX ${ns}p1 get 3 hit 2 set 2 del 0`);
  }, 60_000);

  test('stats settings shows detail_enabled, the verbosity kept and the memory limit', async () => {
    // Proves verbosity is clamped to memcached's 2, detail_enabled follows `stats detail`, and maxbytes matches 64 MiB.
    const steps: StreamStep[] = [
      'verbosity 5\r\nstats detail on\r\nstats settings\r\n',
      'verbosity 0\r\nstats detail off\r\nstats settings\r\nstats\r\n',
    ];
    const { expected, actual } = await playBoth(servers, steps);
    const blocks = (bytes: Buffer): string[] => bytes.toString('latin1').split('END\r\n');
    for (const [index, name] of [
      [0, 'verbosity'],
      [0, 'detail_enabled'],
      [0, 'maxbytes'],
      [1, 'verbosity'],
      [1, 'detail_enabled'],
      [2, 'limit_maxbytes'],
      [2, 'log_watchers'],
    ] as const) {
      const expectedValue = statValue(Buffer.from(blocks(expected)[index], 'latin1'), name);
      expect(expectedValue).toBeDefined();
      expect([name, statValue(Buffer.from(blocks(actual)[index], 'latin1'), name)]).toEqual([name, expectedValue]);
    }
  }, 60_000);

  // Empty classes are ones no small item lands in: memcached files the streams' sentinels in class 2.
  test('stats cachedump: errors and empty classes', async () => {
    // Proves the cachedump forms memcached refuses, and the classes it answers empty, answer alike.
    const steps: StreamStep[] = [
      'stats cachedump\r\nstats cachedump 1\r\nstats cachedump x 0\r\nstats cachedump 1 -1\r\n',
      'stats cachedump 64 0\r\nstats cachedump 99 1\r\nstats cachedump 0 0\r\nstats cachedump 40 0\r\nstats cachedump 63 5\r\n',
    ];
    const { expected, actual } = await playBoth(servers, steps);
    expect(actual.toString('latin1')).toBe(expected.toString('latin1'));
  }, 60_000);

  /**
   * memcached refuses a metadump or a watch behind replies it has not written yet before it reads
   * the rest of the line: each such step goes only once the replies before it are in (a function
   * step), so a loaded machine that joins two steps into one read cannot change the answer.
   */
  const alone = (line: string): StreamStep => () => line;

  test('lru_crawler: metadump errors, empty classes and the pipelining refusal', async () => {
    // Proves every refused metadump form answers memcached's words.
    // (`lru_crawler metadump ,` is left out: memcached 1.6.18 answers it NOTSTARTED but keeps the
    // connection as the crawler's client, and every later metadump fails with an unknown error.)
    const steps: StreamStep[] = [
      alone('lru_crawler metadump 0\r\n'),
      alone('lru_crawler metadump 64\r\n'),
      alone('lru_crawler metadump x\r\n'),
      alone('lru_crawler metadump 1,,x\r\n'),
      'lru_crawler metadump\r\n',
      'lru_crawler metadump all noreply\r\n',
      'lru_crawler\r\n',
      'lru_crawler bogus\r\n',
      alone('lru_crawler metadump 40,41\r\n'),
      alone('version\r\nlru_crawler metadump all\r\n'),
    ];
    const { expected, actual } = await playBoth(servers, steps);
    expect(normalizeReplies(actual)).toEqual(normalizeReplies(expected));
  }, 60_000);

  test('lru_crawler metadump lists the live keys, URL-encoded, with their expiry', async () => {
    // Proves the dump lists each live key once, in memcached's line format, and leaves out deleted and expired keys.
    const ns = namespace();
    const nowSeconds = Math.floor(Date.now() / 1000);
    const steps: StreamStep[] = [
      set(`${ns}plain`, 'hello') + set(`${ns}colon:key`, 'x', 0, 5) + set(`${ns}pct%20~.-_`, 'y'),
      set(`${ns}ttl`, 'z', 1000) + set(`${ns}gone`, 'g') + set(`${ns}expired`, 'e', -1),
      `delete ${ns}gone\r\n`,
      alone('lru_crawler metadump all\r\n'),
    ];
    const { expected, actual } = await playBoth(servers, steps);
    const listed = (bytes: Buffer): { lines: string[]; exps: number[] } => {
      const text = bytes.toString('latin1');
      const lines = text
        .split('\n')
        .filter((line) => line.startsWith(`key=${ns}`))
        .map((line) => line.replace(/ la=\d+ cas=\d+ /, ' la=<t> cas=<cas> ').replace(/ size=\d+$/, ' size=<n>'));
      const exps = lines.map((line) => Number(/ exp=(-?\d+) /.exec(line)?.[1]));
      return { lines: lines.map((line) => line.replace(/ exp=\d+ /, ' exp=<t> ')).sort(), exps };
    };
    const want = listed(expected);
    const got = listed(actual);
    expect(got.lines).toEqual(want.lines);
    expect(want.lines).toHaveLength(4);
    // The one expiring key: an absolute unix time about 1000 s from now, on both servers.
    for (const exps of [want.exps, got.exps]) {
      const expiring = exps.filter((exp) => exp !== -1);
      expect(expiring).toHaveLength(1);
      expect(Math.abs(expiring[0] - (nowSeconds + 1000))).toBeLessThanOrEqual(3);
    }
    expect(actual.toString('latin1')).toMatch(/END\r\n$/);
    expect(actual.toString('latin1')).toContain(`key=${ns}colon%3Akey exp=-1 `);
  }, 60_000);

  test('watch: refusals, and what a connection that cannot watch answers next', async () => {
    // Proves an unknown stream, a silenced one and a watch behind a pipelined request are refused as memcached refuses them.
    const steps: StreamStep[] = [alone('watch bogus\r\n'), alone('watch fetchers noreply\r\n'), 'version\r\n', alone('version\r\nwatch\r\n')];
    const { expected, actual } = await playBoth(servers, steps);
    expect(normalizeReplies(actual)).toEqual(normalizeReplies(expected));
  }, 60_000);

  test('watch fetchers mutations: the item_get and item_store lines of each command', async () => {
    // Proves each command's lookup and store show as memcached's lines, field for field, once times and numbering are masked.
    const ns = namespace();
    const commands = [
      set(`${ns}a`, 'abc'),
      `get ${ns}a ${ns}missing\r\n`,
      `touch ${ns}a 100\r\n`,
      set(`${ns}n`, '5'),
      `incr ${ns}n 2\r\n`,
      `decr ${ns}n 1\r\n`,
      `append ${ns}n 0 0 1\r\n7\r\n`,
      `prepend ${ns}none 0 0 1\r\n7\r\n`,
      `add ${ns}n 0 0 1\r\n1\r\n`,
      `replace ${ns}none 0 0 1\r\n1\r\n`,
      `cas ${ns}n 0 0 1 1\r\n1\r\n`,
      `cas ${ns}none 0 0 1 1\r\n1\r\n`,
      `gat 0 ${ns}n\r\n`,
      set(`${ns}later`, 'ttl', 300),
      set(`${ns}expired`, 'x', -1),
      `get ${ns}expired\r\n`,
      `delete ${ns}a\r\n`,
      `delete ${ns}a\r\n`,
      `get ${ns}end\r\n`,
    ];
    // Each command waits for the replies before it, so the order of events is the order of commands.
    const steps: StreamStep[] = commands.map((command) => () => command);
    const watched = async (port: number): Promise<string[]> => {
      const watcher = await RawClient.connect(port);
      try {
        await watcher.request('watch fetchers mutations\r\n', 'OK\r\n');
        await runStream(port, steps);
        const lastLine = new RegExp(`type=item_get key=${ns}end status=not_found[^\n]*\n`);
        const received = await watcher.readUntil((bytes) => lastLine.test(bytes.toString('latin1')));
        return received
          .toString('latin1')
          .split('\n')
          .filter((line) => line.includes(` key=${ns}`));
      } finally {
        watcher.close();
      }
    };
    const expectedLines = await watched(servers.reference.port);
    const actualLines = await watched(servers.subject.port);
    // memcached prints the ttl of a value stored already expired as an unsigned wrap of its negative.
    const expiredStore = `type=item_store key=${ns}expired `;
    // Either server may have removed the expired value before the get looks (memcached's LRU
    // maintainer, kai's purge), which then finds nothing rather than an expired value.
    const expiredLookup = `type=item_get key=${ns}expired `;
    const masked = (lines: string[]): string[] =>
      lines.map((line) =>
        line
          .replace(/^ts=\d+\.\d+ gid=\d+ /, 'ts=<t> gid=<n> ')
          .replace(/ cfd=-?\d+ /, ' cfd=<fd> ')
          .replace(line.includes(expiredStore) ? / ttl=\d+ / : /^$/, ' ttl=<past> ')
          .replace(line.includes(expiredLookup) ? / status=(expired|not_found) / : /^$/, ' status=<expired or gone> '),
      );
    expect(masked(actualLines)).toEqual(masked(expectedLines));
    expect(expectedLines.length).toBeGreaterThan(commands.length);
    const gids = actualLines.map((line) => Number(/ gid=(\d+) /.exec(line)?.[1]));
    expect(gids).toEqual([...gids].sort((a, b) => a - b));
  }, 60_000);
});

describe(`stats conns: ${subjectName} against memcached`, () => {
  let reference: RunningServer;
  let subject: RunningServer;
  const clients: RawClient[] = [];

  // Fresh servers: the listing shows every connection open, so no other test may hold one.
  beforeAll(async () => {
    reference = await startMemcached({ valueBytesMax });
    subject = await startSubject({ valueBytesMax });
  }, 60_000);

  afterAll(async () => {
    for (const client of clients.splice(0)) client.close();
    await Promise.all([reference?.stop(), subject?.stop()]);
  }, 30_000);

  /** One block per connection, numbers, ports and seconds masked. */
  const normalizeConns = (text: string): string =>
    text
      .replace(/^STAT \d+:/gm, 'STAT <n>:')
      .replace(/tcp:127\.0\.0\.1:\d+/g, 'tcp:127.0.0.1:<port>')
      .replace(/secs_since_last_cmd \d+/g, 'secs_since_last_cmd <s>');

  /**
   * Opens, in order: a connection that sent nothing, one part way through a value, one part way
   * through a command line and a watcher; then asks `stats conns` on a fifth until it lists all
   * five (a connection closed just before may still be listed for a moment).
   */
  async function connsWithEveryState(port: number): Promise<string> {
    const idle = await RawClient.connect(port);
    const inValue = await RawClient.connect(port);
    inValue.send('set conns_value 0 0 10\r\nab');
    const inLine = await RawClient.connect(port);
    inLine.send('get conns_li');
    const watcher = await RawClient.connect(port);
    await watcher.request('watch\r\n', 'OK\r\n');
    const asking = await RawClient.connect(port);
    clients.push(idle, inValue, inLine, watcher, asking);
    try {
      for (let attempt = 0; attempt < pollAttemptsMax; attempt++) {
        const reply = await asking.request('stats conns\r\n', 'END\r\n');
        const states = [...reply.matchAll(/:state (\S+)\r\n/g)].map((match) => match[1]);
        const wanted = ['conn_listening', 'conn_new_cmd', 'conn_nread', 'conn_read', 'conn_watch', 'conn_parse_cmd'];
        if (states.join(' ') === wanted.join(' ')) return reply;
        await delay(pollGapMs);
      }
      throw new Error(`stats conns on port ${port} never listed the five connections in order`);
    } finally {
      for (const client of [idle, inValue, inLine, watcher, asking]) client.close();
    }
  }

  test('one block per connection, as memcached lists them', async () => {
    // Proves the listener and each connection appear with addr, listen_addr, state and idle seconds, in memcached's states.
    const expected = await connsWithEveryState(reference.port);
    const actual = await connsWithEveryState(subject.port);
    expect(normalizeConns(actual)).toEqual(normalizeConns(expected));
  }, 60_000);
});
