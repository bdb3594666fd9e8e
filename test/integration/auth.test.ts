/**
 * Authentication on one real kai node (bin/kai as a child process) started with --auth-file:
 * text clients refused then let in, the file read again on SIGHUP, a bad file at start or on
 * reload, and memjs logging in with SASL PLAIN over the binary protocol.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as memjs from 'memjs';
import { killStartedKai, runKai, startKai, textAuthRequest, type KaiProcess, type TextCredentials } from '../support/process';
import { RawClient } from '../support/raw-client';
import { delay } from '../support/servers';

/** Bound on waiting for a SIGHUP to take effect; the reload itself takes a millisecond. */
const reloadTimeoutMs = 10_000;
const reloadPollMs = 25;
const alice: TextCredentials = { user: 'alice', password: 'secret' };
const quietLogger = { log: (): void => undefined };

let directory: string;
let authFile: string;
let kai: KaiProcess;
const clients: RawClient[] = [];

async function connect(): Promise<RawClient> {
  const client = await RawClient.connect(kai.memcachePort);
  clients.push(client);
  return client;
}

/** A fresh connection's answer to logging in with `credentials`. */
async function tryLogin(credentials: TextCredentials): Promise<string> {
  const client = await connect();
  const reply = await client.request(textAuthRequest(credentials));
  client.close();
  return reply;
}

/** Polls, bounded in time, until logging in with `credentials` gets `reply`. */
async function waitForLoginReply(credentials: TextCredentials, reply: string): Promise<void> {
  const deadlineMs = Date.now() + reloadTimeoutMs;
  let last = '';
  while (Date.now() < deadlineMs) {
    last = await tryLogin(credentials);
    if (last === reply) return;
    await delay(reloadPollMs);
  }
  throw new Error(`login as ${credentials.user} still answers ${JSON.stringify(last)} after ${reloadTimeoutMs} ms`);
}

/** Polls, bounded in time, until kai's log holds `text`. */
async function waitForLog(text: string): Promise<void> {
  const deadlineMs = Date.now() + reloadTimeoutMs;
  while (!kai.stdout().includes(text)) {
    if (Date.now() > deadlineMs) throw new Error(`kai never logged ${JSON.stringify(text)}; stdout: ${kai.stdout()}`);
    await delay(reloadPollMs);
  }
}

/** The general stats, read over a text connection that logs in as alice first. */
async function statsOf(): Promise<Map<string, string>> {
  const client = await connect();
  const reply = await client.request(`${textAuthRequest(alice)}stats\r\n`, 'END\r\n');
  return new Map([...reply.matchAll(/^STAT (\S+) (.*)\r$/gm)].map((match) => [match[1], match[2]]));
}

function memjsClient(credentials?: TextCredentials): memjs.Client {
  return memjs.Client.create(`127.0.0.1:${kai.memcachePort}`, {
    username: credentials?.user,
    password: credentials?.password,
    retries: 1,
    timeout: 2,
    logger: quietLogger,
  });
}

beforeAll(async () => {
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-auth-'));
  authFile = path.join(directory, 'users');
  fs.writeFileSync(authFile, 'alice:secret\nbob:pa:ss\n', { mode: 0o600 });
  kai = await startKai({
    dataDir: path.join(directory, 'data'),
    args: ['--n', '1', '--r', '1', '--w', '1', '--log-level', 'info', '--auth-file', authFile],
    readyCredentials: alice,
  });
});

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

afterAll(async () => {
  await kai?.stop();
  await killStartedKai();
  fs.rmSync(directory, { recursive: true, force: true });
});

describe('text clients', () => {
  test('are refused until they log in, then served, each connection on its own', async () => {
    // Proves the ascii auth flow end to end, and that logging in one connection opens no other.
    const client = await connect();
    expect(await client.request('get text:a\r\n')).toBe('CLIENT_ERROR unauthenticated\r\n');
    expect(await client.request('set text:a 0 0 1\r\nx\r\n')).toBe('CLIENT_ERROR bad authentication token format\r\n');
    expect(await client.request(textAuthRequest({ user: 'alice', password: 'wrong' }))).toBe('CLIENT_ERROR authentication failure\r\n');
    expect(await client.request('version\r\n')).toBe('CLIENT_ERROR unauthenticated\r\n');
    expect(await client.request(textAuthRequest(alice))).toBe('STORED\r\n');
    expect(await client.request('set text:a 0 0 5\r\nhello\r\n')).toBe('STORED\r\n');
    expect(await client.request('get text:a\r\n', 'END\r\n')).toBe('VALUE text:a 0 5\r\nhello\r\nEND\r\n');

    const other = await connect();
    expect(await other.request('get text:a\r\n')).toBe('CLIENT_ERROR unauthenticated\r\n');
    expect(await other.request(textAuthRequest({ user: 'bob', password: 'pa:ss' }))).toBe('STORED\r\n');
    expect(await other.request('get text:a\r\n', 'END\r\n')).toBe('VALUE text:a 0 5\r\nhello\r\nEND\r\n');
  });

  test('stats count logins and failed logins under memcached names', async () => {
    // Proves auth_cmds and auth_errors move with each attempt.
    const before = await statsOf();
    expect(await tryLogin({ user: 'alice', password: 'nope' })).toBe('CLIENT_ERROR authentication failure\r\n');
    const after = await statsOf();
    expect(Number(after.get('auth_cmds')) - Number(before.get('auth_cmds'))).toBe(2);
    expect(Number(after.get('auth_errors')) - Number(before.get('auth_errors'))).toBe(1);
  });
});

describe('SIGHUP', () => {
  test('reads the file again: the old password is refused and the new one accepted', async () => {
    // Proves credentials change without a restart, and a logged-in connection stays logged in.
    const loggedIn = await connect();
    expect(await loggedIn.request(textAuthRequest(alice))).toBe('STORED\r\n');
    const carol: TextCredentials = { user: 'carol', password: 'new-secret' };
    fs.writeFileSync(authFile, 'alice:changed\ncarol:new-secret\n');
    process.kill(kai.pid, 'SIGHUP');
    await waitForLoginReply(carol, 'STORED\r\n');
    expect(await tryLogin(alice)).toBe('CLIENT_ERROR authentication failure\r\n');
    expect(await tryLogin({ user: 'alice', password: 'changed' })).toBe('STORED\r\n');
    expect(await loggedIn.request('version\r\n')).toMatch(/^VERSION /);
  });

  test('with a bad file keeps the credentials in force and logs an error', async () => {
    // Proves a mistyped file never locks clients out, and the operator is told why.
    fs.writeFileSync(authFile, 'dave:first\n');
    process.kill(kai.pid, 'SIGHUP');
    await waitForLoginReply({ user: 'dave', password: 'first' }, 'STORED\r\n');
    fs.writeFileSync(authFile, 'dave:second\nno colon here\n');
    process.kill(kai.pid, 'SIGHUP');
    await waitForLog('auth file reload failed');
    expect(kai.stdout()).toContain("line 2: has no ':'");
    expect(await tryLogin({ user: 'dave', password: 'first' })).toBe('STORED\r\n');
    expect(await tryLogin({ user: 'dave', password: 'second' })).toBe('CLIENT_ERROR authentication failure\r\n');
    // Put alice back for the tests that follow.
    fs.writeFileSync(authFile, 'alice:secret\nbob:pa:ss\n');
    process.kill(kai.pid, 'SIGHUP');
    await waitForLoginReply(alice, 'STORED\r\n');
  });
});

describe('memjs over the binary protocol', () => {
  test('with the right SASL credentials works', async () => {
    // Proves SASL PLAIN against the auth file lets a binary client in.
    const client = memjsClient(alice);
    try {
      expect(await client.set('memjs:auth', 'value', { expires: 0 })).toBe(true);
      expect((await client.get('memjs:auth')).value?.toString()).toBe('value');
    } finally {
      client.close();
    }
  });

  test('with a wrong password is refused, and counted as memcached counts it', async () => {
    // Proves a binary client with bad credentials gets nothing, and SASL attempts show in stats.
    const before = await statsOf();
    const client = memjsClient({ user: 'alice', password: 'wrong' });
    try {
      await expect(client.get('memjs:auth')).rejects.toBeDefined();
    } finally {
      client.close();
    }
    const after = await statsOf();
    // The text logins that read the stats count too: one each, neither failed.
    expect(Number(after.get('auth_errors')) - Number(before.get('auth_errors'))).toBeGreaterThanOrEqual(1);
    expect(Number(after.get('auth_cmds')) - Number(before.get('auth_cmds'))).toBeGreaterThanOrEqual(2);
  });

  test('without credentials is refused', async () => {
    // Proves a binary client cannot skip SASL when an auth file is set.
    const client = memjsClient();
    try {
      await expect(client.get('memjs:auth')).rejects.toBeDefined();
    } finally {
      client.close();
    }
  });
});

describe('a bad auth file at start', () => {
  test('stops kai with one line and exit code 2', async () => {
    // Proves a node never starts with an auth file it cannot use.
    const malformed = path.join(directory, 'malformed');
    fs.writeFileSync(malformed, 'alice:secret\n\n');
    const dataDir = path.join(directory, 'unused');
    const blank = await runKai(['start', '--data-dir', dataDir, '--auth-file', malformed], { cwd: directory });
    expect(blank.code).toBe(2);
    expect(blank.stderr).toBe(`kai: auth file ${malformed}: line 2: is blank, should be 'user:password'\n`);

    const missing = path.join(directory, 'missing');
    const absent = await runKai(['start', '--data-dir', dataDir, '--auth-file', missing], { cwd: directory });
    expect(absent.code).toBe(2);
    expect(absent.stderr).toBe(`kai: cannot read auth file ${missing}: ENOENT: no such file or directory, open '${missing}'\n`);
  });
});
