// Proves every example of README.md runs as written, in a fresh clone: npm install leaves the lockfile alone and warns of nothing, npm test builds nothing more, npx kai and npm link give a kai command, and the client examples talk to the node the README starts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { getFreePort, repoRoot } from '../support/process';
import { delay } from '../support/servers';

/**
 * npm install in the clone may build kai from nothing on a loaded machine. The clone gets this
 * checkout's node_modules, so that better-sqlite3 need not compile SQLite again: npm install still
 * checks the whole tree against the lockfile (and would rewrite a stale one), and builds dist/.
 */
const installMsMax = 5 * 60_000;
const commandMsMax = 2 * 60_000;
const pollMs = 100;
/** Output kept per example: plenty for what the examples print. */
const outputBytesMax = 1024 * 1024;
/** The unit test file `npm test` runs here, rather than the whole suite (this file among it). */
const testFileForNpmTest = 'dist/test/unit/ring/index.test.js';

interface CodeBlock {
  readonly language: string;
  readonly code: string;
}

/** The fenced code blocks of a Markdown text, in order. */
function codeBlocks(markdown: string): CodeBlock[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((match) => ({ language: match[1], code: match[2] }));
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

let cloneDir: string;
let prefixDir: string;
let memcachePort: number;
let internalPort: number;
/** Examples still running (a node, a cluster): their process groups, stopped by the test or at the end. */
const groups = new Set<ChildProcess>();

/**
 * What an example runs in: a shell's environment, without the npm_* variables of the npm that
 * may have started this test, with this node's npm and npx first on the PATH, and npm's global
 * prefix inside the test, so that npm link never touches the machine's own.
 */
function exampleEnvironment(): NodeJS.ProcessEnv {
  const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  const bin = path.dirname(process.execPath);
  return { ...environment, PATH: `${path.join(prefixDir, 'bin')}:${bin}:${process.env.PATH ?? ''}`, npm_config_prefix: prefixDir };
}

/** Starts `command` in its own process group, as a terminal runs a foreground job. */
function startExample(command: string, args: readonly string[]): { child: ChildProcess; output: () => string; exited: Promise<Run> } {
  const child = spawn(command, args, { cwd: cloneDir, env: exampleEnvironment(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  groups.add(child);
  let output = '';
  const keep = (chunk: Buffer): void => {
    if (output.length < outputBytesMax) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<Run>((resolve) => {
    child.once('exit', (code, signal) => {
      groups.delete(child);
      resolve({ code, signal, output });
    });
  });
  return { child, output: () => output, exited };
}

async function runExample(command: string, args: readonly string[]): Promise<Run> {
  const example = startExample(command, args);
  const timer = setTimeout(() => example.child.pid && process.kill(-example.child.pid, 'SIGKILL'), commandMsMax);
  try {
    return await example.exited;
  } finally {
    clearTimeout(timer);
  }
}

function runShell(code: string): Promise<Run> {
  return runExample('bash', ['-euo', 'pipefail', '-c', code]);
}

/** Ctrl-C: SIGINT to the whole group, as a terminal sends it. */
function interrupt(child: ChildProcess): void {
  if (child.pid !== undefined) process.kill(-child.pid, 'SIGINT');
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadlineMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await delay(pollMs);
  }
}

/** Tracked files npm install or the examples changed in the clone, but for the config file the README invites editing. */
function changedTrackedFiles(): string[] {
  const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: cloneDir, encoding: 'utf8' });
  return status.stdout.split('\n').filter((line) => line !== '' && !line.endsWith(' kai.config.json'));
}

/** The lines the examples promise in their comments (`console.log(value); // hello`). */
function promisedOutput(code: string): string[] {
  return [...code.matchAll(/console\.log\(.*\);\s*\/\/\s*(.+)$/gm)].map((match) => match[1].trim());
}

beforeAll(async () => {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-readme-'));
  cloneDir = path.join(workDir, 'kai');
  prefixDir = path.join(workDir, 'npm-prefix');
  const cloned = spawnSync('git', ['clone', '--quiet', repoRoot, cloneDir], { encoding: 'utf8' });
  if (cloned.status !== 0) throw new Error(`git clone failed: ${cloned.stderr}`);
  fs.cpSync(path.join(repoRoot, 'node_modules'), path.join(cloneDir, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  // The README starts its node with kai.config.json's settings, which it says are there to edit:
  // free ports here, so that the test never meets a node someone runs on the defaults.
  [memcachePort, internalPort] = [await getFreePort(), await getFreePort()];
  const configFile = path.join(cloneDir, 'kai.config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(configFile, `${JSON.stringify({ ...config, port: internalPort, memcache_port: memcachePort }, null, 2)}\n`);
}, 60_000);

afterAll(() => {
  for (const child of groups) if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  fs.rmSync(path.dirname(cloneDir), { recursive: true, force: true });
});

/** Each example, found by what it runs, and how it is checked. */
const checks: readonly { readonly matches: (block: CodeBlock) => boolean; readonly check: (block: CodeBlock) => Promise<void> }[] = [
  {
    // npm install, then a node in the foreground, kept running for the examples that follow.
    matches: (block) => block.language === 'sh' && /^npx kai start$/m.test(block.code),
    check: async (block) => {
      const node = startExample('bash', ['-euo', 'pipefail', '-c', block.code]);
      await waitFor(async () => (await accepts(memcachePort)) || node.child.exitCode !== null, installMsMax, 'the node of the README');
      expect(node.child.exitCode).toBeNull();
      expect(node.output()).not.toMatch(/npm warn/i);
      expect(changedTrackedFiles()).toEqual([]);
    },
  },
  {
    matches: (block) => block.language === 'sh' && /^npm link$/m.test(block.code),
    check: async (block) => {
      // Links only ever go to the test's own prefix.
      expect((await runShell('npm config get prefix')).output.trim()).toBe(prefixDir);
      const run = await runShell(block.code);
      expect(run).toMatchObject({ code: 0 });
      const version = (JSON.parse(fs.readFileSync(path.join(cloneDir, 'package.json'), 'utf8')) as { version: string }).version;
      expect(run.output.trim().split('\n').pop()).toBe(version);
      expect(fs.realpathSync(path.join(prefixDir, 'bin', 'kai'))).toBe(fs.realpathSync(path.join(cloneDir, 'bin', 'kai')));
    },
  },
  {
    matches: (block) => block.language === 'sh' && /^npx kai status$/m.test(block.code),
    check: async (block) => {
      const run = await runShell(block.code);
      expect(run).toMatchObject({ code: 0 });
      expect(run.output).toMatch(new RegExp(`^127\\.0\\.0\\.1:${internalPort} +served `, 'm'));
      expect(run.output).toMatch(/^key greeting: bucket \d+ of 1024, N=1 R=1 W=1/m);
    },
  },
  {
    matches: (block) => block.language === 'sh' && /^npx kai cluster --nodes 3$/m.test(block.code),
    check: async (block) => {
      const cluster = startExample('bash', ['-euo', 'pipefail', '-c', block.code]);
      await waitFor(() => cluster.output().includes('stop: Ctrl-C') || cluster.child.exitCode !== null, commandMsMax, 'the cluster of the README');
      const nodeLines = cluster.output().match(/^node\d: memcache 127\.0\.0\.1:\d+ {2}internal 127\.0\.0\.1:\d+ {2}admin http:\/\/127\.0\.0\.1:\d+\/ {2}pid \d+$/gm);
      // The output goes with the count, so a cluster that did not start says why.
      expect({ nodeLines: nodeLines?.length ?? 0, output: cluster.output() }).toEqual({ nodeLines: 3, output: expect.any(String) });
      interrupt(cluster.child);
      const run = await cluster.exited;
      expect(run.output).toContain('stopping every node');
      expect(run.output).not.toMatch(/exited with|was killed by/);
    },
  },
  {
    matches: (block) => block.language === 'js',
    check: async (block) => {
      const file = path.join(cloneDir, /^import /m.test(block.code) ? 'example.mjs' : 'example.js');
      fs.writeFileSync(file, block.code.replaceAll('11211', String(memcachePort)));
      const run = await runExample(process.execPath, [file]);
      expect(run).toMatchObject({ code: 0 });
      expect(run.output.trim().split('\n')).toEqual(promisedOutput(block.code));
    },
  },
  {
    matches: (block) => block.language === 'sh' && block.code.includes('/dev/tcp/127.0.0.1/11211'),
    check: async (block) => {
      const run = await runShell(block.code.replaceAll('11211', String(memcachePort)));
      expect(run).toMatchObject({ code: 0 });
      expect(run.output).toBe('STORED\r\nVALUE greeting 0 5\r\nhello\r\nEND\r\n');
    },
  },
  {
    // The whole suite would run this file again: npm test runs one small test file instead.
    matches: (block) => block.language === 'sh' && block.code.trim() === 'npm install && npm test',
    check: async (block) => {
      const run = await runShell(block.code.replace(/npm test\s*$/, `npm test -- ${testFileForNpmTest}`));
      expect(run).toMatchObject({ code: 0 });
      expect(run.output).toContain('dist/ is current: nothing in src, test or bench changed since the last build; tsc skipped');
      expect(run.output).not.toMatch(/npm warn/i);
      expect(run.output).toMatch(/Tests: +\d+ passed/);
      expect(changedTrackedFiles()).toEqual([]);
    },
  },
];

test('every example of README.md runs as written, in order, against the node it starts', async () => {
  const blocks = codeBlocks(fs.readFileSync(path.join(cloneDir, 'README.md'), 'utf8'));
  expect(blocks.length).toBeGreaterThan(0);
  for (const block of blocks) {
    const known = checks.filter((candidate) => candidate.matches(block));
    // A new example must come with its check: none runs unchecked.
    expect({ block: block.code, checks: known.length }).toEqual({ block: block.code, checks: 1 });
    await known[0].check(block);
  }
  const node = [...groups];
  for (const child of node) interrupt(child);
  await waitFor(async () => !(await accepts(memcachePort)), commandMsMax, 'the node of the README to stop on Ctrl-C');
}, 15 * 60_000);
