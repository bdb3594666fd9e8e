/**
 * Small tmpfs mounts for tests of a full disk: a real filesystem that refuses writes with ENOSPC
 * (SQLITE_FULL to SQLite) once its few pages are used. Mounting needs root, as the tests run in CI.
 *
 *   const disk = mountTmpfs(256 * 1024);
 *   fillDisk(disk.dir);            // until ENOSPC
 *   ...
 *   disk.unmount();                // in afterEach/afterAll
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Tmpfs {
  readonly dir: string;
  /** Unmounts (lazily, should a process still hold a file) and removes the mount point; idempotent. */
  unmount(): void;
}

export function mountTmpfs(sizeBytes: number): Tmpfs {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    unmount() {
      if (!mounted) return;
      mounted = false;
      execFileSync('umount', ['-l', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Chunks written by fillDisk at most: a bound on its loop, far above any test mount's size. */
const fillChunksMax = 100_000;

/** Writes `fill` files in `dir` until the disk refuses (ENOSPC); returns the bytes written. */
export function fillDisk(dir: string, name = 'fill'): number {
  const chunk = Buffer.alloc(4096, 0x61);
  const fd = fs.openSync(path.join(dir, name), 'a');
  let written = 0;
  try {
    for (let index = 0; index < fillChunksMax; index++) written += fs.writeSync(fd, chunk);
    throw new Error(`${dir} took ${written} bytes without filling up`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    return written;
  } finally {
    fs.closeSync(fd);
  }
}
