/**
 * One kai process per data dir. Two processes on one directory would both write its SQLite file
 * and its notes (node id, member list, counter actor), each undoing the other. The lock is an
 * exclusive SQLite lock on a file of its own, held for the life of the process: the kernel drops
 * it when the process ends, however it ends (kill -9 included), so a lock is never left stale.
 * Beside it, a small file names the holder, so that the process refused can say which one it is.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { KaiError } from '../errors';

const lockFileName = 'kai.lock';
const holderFileName = 'kai.lock.holder';

/** What the holder's file says of it. */
interface Holder {
  readonly pid: number;
  readonly nodeId: string;
  readonly startedAt: string;
}

export interface DataDirLock {
  /** Lets another process take the data dir. */
  release(): void;
}

function describeHolder(dataDir: string): string {
  try {
    const holder = JSON.parse(fs.readFileSync(path.join(dataDir, holderFileName), 'utf8')) as Partial<Holder>;
    return `kai process ${String(holder.pid)} (node ${String(holder.nodeId)}, started ${String(holder.startedAt)})`;
  } catch {
    return 'another kai process';
  }
}

/**
 * Takes the data dir for this process, creating the directory when missing; throws
 * KAI_DATA_DIR_IN_USE naming the holder when another process has it.
 */
export function lockDataDir(dataDir: string, nodeId: string, nowMs: number): DataDirLock {
  fs.mkdirSync(dataDir, { recursive: true });
  const db = new Database(path.join(dataDir, lockFileName), { timeout: 0 });
  try {
    // In exclusive locking mode SQLite keeps the write lock it takes until the connection closes.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); COMMIT;');
  } catch (error) {
    db.close();
    if (error instanceof Error && /locked|busy/i.test(error.message)) {
      throw new KaiError(
        'KAI_DATA_DIR_IN_USE',
        `${path.resolve(dataDir)} is used by ${describeHolder(dataDir)}: stop that process first, or start this one with another --data-dir`,
      );
    }
    throw new KaiError('KAI_STORAGE_FAILURE', `cannot lock ${path.resolve(dataDir)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const holder: Holder = { pid: process.pid, nodeId, startedAt: new Date(nowMs).toISOString() };
  fs.writeFileSync(path.join(dataDir, holderFileName), `${JSON.stringify(holder)}\n`);
  return {
    release: () => {
      if (db.open) db.close();
    },
  };
}
