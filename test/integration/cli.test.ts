// The kai command line: help, settings errors, start and stop, and start-up failures as one plain line.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { settingFields, settingNames } from '../../src/config/fields';
import { getFreePort, killStartedKai, logMessages, repoRoot, runKai, startKai } from '../support/process';

let workDir: string;

beforeEach(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-cli-'));
});

afterEach(() => {
  fs.rmSync(workDir, { recursive: true, force: true });
});

afterAll(killStartedKai);

/** Asserts a run failed with usage exit code 2 and exactly one `kai: ...` line on stderr. */
function expectUsageError(run: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(run.code).toBe(2);
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^kai: /);
  expect(lines[0]).toMatch(pattern);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

describe('kai help and version', () => {
  test('kai --help lists the start command and exits 0', async () => {
    // Proves the top-level help is reachable and points at the settings.
    const run = await runKai(['--help'], { cwd: workDir });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Usage: kai/);
    expect(run.stdout).toMatch(/start/);
    expect(run.stdout).toMatch(/kai start --help/);
  });

  test('kai start --help lists every flag with its default', async () => {
    // Proves no setting is missing from the command line and each help line shows a default.
    const run = await runKai(['start', '--help'], { cwd: workDir });
    expect(run.code).toBe(0);
    const help = run.stdout.replace(/\s+/g, ' ');
    for (const name of settingNames) {
      const field = settingFields[name];
      expect(help).toContain(field.flag);
      expect(help).toContain(`(default: ${field.defaultText})`);
    }
    expect(help).toContain('--config <file>');
  });

  test('kai --version prints the package.json version', async () => {
    // Proves the version comes from package.json, not a copy that can drift.
    const packageJson = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const run = await runKai(['--version'], { cwd: workDir });
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(packageJson.version);
  });
});

describe('kai start with bad settings', () => {
  test('an unknown flag exits 2 with one line', async () => {
    // Proves commander's own errors follow the kai: format and exit code.
    expectUsageError(await runKai(['start', '--prot', '1'], { cwd: workDir }), /unknown option '--prot'/);
  });

  test('an unknown config file key exits 2 with one line', async () => {
    // Proves the discovered ./kai.config.json is validated key by key.
    fs.writeFileSync(path.join(workDir, 'kai.config.json'), JSON.stringify({ memcahce_port: 1 }));
    expectUsageError(await runKai(['start'], { cwd: workDir }), /unknown key "memcahce_port"/);
  });

  test('malformed JSON in --config exits 2 naming the file', async () => {
    // Proves a broken config file is reported with its path and the parse error.
    const file = path.join(workDir, 'broken.json');
    fs.writeFileSync(file, '{ "port": ');
    expectUsageError(await runKai(['start', '--config', file], { cwd: workDir }), new RegExp(`${file}: malformed JSON: `));
  });

  test('r greater than n exits 2', async () => {
    // Proves cross-setting rules are enforced before anything starts.
    expectUsageError(await runKai(['start', '--n', '2', '--r', '3'], { cwd: workDir }), /r \(3\) must not be greater than n \(2\)/);
  });

  test('port 70000 exits 2', async () => {
    // Proves port ranges are checked for flags.
    expectUsageError(await runKai(['start', '--port', '70000'], { cwd: workDir }), /--port: must be a port from 1 to 65535/);
  });

  test('a data dir under a regular file exits 2', async () => {
    // Proves an unusable data dir is a settings error, not a crash with a stack trace.
    fs.writeFileSync(path.join(workDir, 'file'), '');
    const dataDir = path.join(workDir, 'file', 'data');
    expectUsageError(await runKai(['start', '--data-dir', dataDir], { cwd: workDir }), /data dir .* cannot be created: ENOTDIR/);
  });

  test('bad settings start nothing and create no data dir', async () => {
    // Proves validation happens before any side effect of starting.
    const run = await runKai(['start', '--buckets', '1000'], { cwd: workDir });
    expectUsageError(run, /--buckets: must be a power of two/);
    expect(fs.existsSync(path.join(workDir, 'data'))).toBe(false);
  });
});

describe('kai start and stop', () => {
  test('SIGTERM stops a started node and exits 0', async () => {
    // Proves the node listens, logs one "listening" line, and stops cleanly on SIGTERM.
    const dataDir = path.join(workDir, 'data');
    const kai = await startKai({ dataDir });
    const status = await kai.stop('SIGTERM');
    expect(status).toEqual({ code: 0, signal: null });
    const lines = kai.stdout().split('\n').filter((line) => line.startsWith('{'));
    const listening = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.msg === 'listening');
    expect(listening).toMatchObject({ memcachePort: kai.memcachePort, port: kai.port, dataDir });
    expect(kai.stderr()).toBe('');
  });

  test('SIGINT also stops the node with exit code 0', async () => {
    // Proves Ctrl-C behaves like SIGTERM.
    const kai = await startKai({ dataDir: path.join(workDir, 'data') });
    expect(await kai.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  test('log lines go to --log-file and are flushed by exit', async () => {
    // Proves file logging and that the last lines are written before the process exits.
    const logFile = path.join(workDir, 'kai.log');
    const kai = await startKai({ dataDir: path.join(workDir, 'data'), args: ['--log-file', logFile] });
    expect(await kai.stop()).toEqual({ code: 0, signal: null });
    const messages = logMessages(logFile);
    expect(messages).toContain('listening');
    expect(messages[messages.length - 1]).toBe('stopped');
  });

  test.each([
    ['memcache', '--memcache-port'],
    ['internal API', '--port'],
  ])('the %s port already in use exits 1 with one plain line naming %s', async (portName, flag) => {
    // Proves a port in use is one line on stderr that names the flag to change, and the log on
    // stdout carries no stack trace and no second account of it.
    const blocker = net.createServer();
    const blocked = await getFreePort();
    await new Promise<void>((resolve) => blocker.listen(blocked, '127.0.0.1', resolve));
    try {
      const other = await getFreePort();
      const [port, memcachePort] = flag === '--port' ? [blocked, other] : [other, blocked];
      const args = ['start', '--hostname', '127.0.0.1', '--port', String(port), '--memcache-port', String(memcachePort)];
      const run = await runKai([...args, '--data-dir', path.join(workDir, 'data')], { cwd: workDir });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(`kai: ${portName} port ${blocked} on 127.0.0.1 is in use: choose another with ${flag}\n`);
      expect(run.stdout).not.toContain('cannot start');
      expect(run.stdout).not.toMatch(/\n\s+at |"stack"/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test('an address no interface has exits 1 naming --memcache-host', async () => {
    // Proves a bind to a foreign address says which flag chose it.
    const args = ['start', '--port', String(await getFreePort()), '--memcache-port', String(await getFreePort())];
    const run = await runKai([...args, '--memcache-host', '192.0.2.1', '--data-dir', path.join(workDir, 'data')], { cwd: workDir });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'kai: cannot listen on 192.0.2.1 for the memcache port: no interface of this machine has that address: choose another with --memcache-host\n',
    );
  });

  test('with --log-file the log records the start failure too, without a stack', async () => {
    // Proves an operator reading only the log file learns why the node did not start.
    const blocker = net.createServer();
    const blocked = await getFreePort();
    await new Promise<void>((resolve) => blocker.listen(blocked, '127.0.0.1', resolve));
    try {
      const logFile = path.join(workDir, 'kai.log');
      const args = ['start', '--port', String(await getFreePort()), '--memcache-port', String(blocked), '--log-file', logFile];
      const run = await runKai([...args, '--data-dir', path.join(workDir, 'data')], { cwd: workDir });
      expect(run.code).toBe(1);
      const entries = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      const fatal = entries.find((entry) => entry.msg === 'cannot start');
      expect(fatal).toMatchObject({ reason: `memcache port ${blocked} on 127.0.0.1 is in use: choose another with --memcache-port` });
      expect(fatal).not.toHaveProperty('err');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
  test('a second process on a data dir exits 1 naming the first; the dir is free again once the first is killed -9', async () => {
    // Proves one process per data dir, and that a crash leaves no stale lock behind.
    const dataDir = path.join(workDir, 'shared');
    const first = await startKai({ dataDir });
    const port = await getFreePort();
    const memcachePort = await getFreePort();
    const args = ['start', '--hostname', '127.0.0.1', '--port', String(port), '--memcache-port', String(memcachePort), '--data-dir', dataDir];
    const second = await runKai(args, { cwd: workDir });
    expect(second.code).toBe(1);
    const lines = second.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`is used by kai process ${first.pid} (node 127.0.0.1:${first.port}`);
    expect(lines[0]).toContain('stop that process first, or start this one with another --data-dir');
    await first.kill();
    const again = await startKai({ dataDir, port: first.port, memcachePort: first.memcachePort });
    expect(await again.stop()).toEqual({ code: 0, signal: null });
  });

  test('a node started with another address on a data dir exits 1 saying how to start it', async () => {
    // Proves a data dir is never taken over by a node of another id.
    const dataDir = path.join(workDir, 'owned');
    const owner = await startKai({ dataDir });
    expect(await owner.stop()).toEqual({ code: 0, signal: null });
    const port = await getFreePort();
    const args = ['start', '--hostname', '127.0.0.1', '--port', String(port), '--memcache-port', String(await getFreePort()), '--data-dir', dataDir];
    const other = await runKai(args, { cwd: workDir });
    expect(other.code).toBe(1);
    const lines = other.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toEqual([
      `kai: cannot start: ${dataDir} holds the data of node 127.0.0.1:${owner.port}, not 127.0.0.1:${port}: ` +
        `start it as that node (--hostname 127.0.0.1 --port ${owner.port}), or start 127.0.0.1:${port} with an empty --data-dir`,
    ]);
    const back = await startKai({ dataDir, port: owner.port });
    expect(await back.stop()).toEqual({ code: 0, signal: null });
  });
});
