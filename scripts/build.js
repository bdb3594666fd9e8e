#!/usr/bin/env node
'use strict';
/**
 * Compiles kai into dist/ with tsc. With --if-stale it first checks whether dist/ is current and
 * skips tsc when it is, so that `npm install && npm test` compiles once: `npm install` builds
 * (the prepare script, so that `kai start` runs right after it) and `npm test` finds nothing to do.
 *
 * dist/ is current when a stamp written by the last successful build names a time no input is
 * newer than. The stamp holds the newest input time seen *before* that build started, so a file
 * saved while tsc was running is newer than it and is compiled next time. Directories count as
 * inputs too: adding, removing or renaming a file changes its directory's time.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const stampFile = path.join(root, 'dist', '.build-stamp');
/** What tsconfig.json compiles, and what decides how: the config and the installed packages' versions. */
const inputs = ['src', 'test', 'bench', 'tsconfig.json', 'package.json', 'package-lock.json'];
/** An input tree deeper than this is not kai's source but a mistake (a link loop). */
const depthMax = 32;

function newestMs(file, depth) {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (stat === undefined) return 0;
  if (!stat.isDirectory() || depth >= depthMax) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of fs.readdirSync(file)) newest = Math.max(newest, newestMs(path.join(file, entry), depth + 1));
  return newest;
}

function stampedMs() {
  try {
    const stamped = Number(fs.readFileSync(stampFile, 'utf8'));
    return Number.isFinite(stamped) ? stamped : undefined;
  } catch {
    return undefined;
  }
}

const ifStale = process.argv.includes('--if-stale');
const inputsMs = Math.max(...inputs.map((input) => newestMs(path.join(root, input), 0)));
const stamped = stampedMs();
if (ifStale && stamped !== undefined && inputsMs <= stamped) {
  process.stdout.write('dist/ is current: nothing in src, test or bench changed since the last build; tsc skipped\n');
  process.exit(0);
}
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
const build = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  // A failed build leaves no stamp, so the next one compiles again.
  fs.rmSync(stampFile, { force: true });
  process.exit(build.status ?? 1);
}
fs.writeFileSync(stampFile, String(inputsMs));
