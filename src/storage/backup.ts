/**
 * A consistent copy of a node's SQLite file while the node runs, with SQLite's online backup
 * API (better-sqlite3's `backup`). Copying the file with `cp` while the node writes can catch a
 * page half-written, and misses the commits still in the write-ahead log; the backup API reads
 * through a connection of its own, so the copy holds every transaction committed when it took
 * its snapshot (every write acknowledged by then) and none in part.
 *
 * The whole database is copied in one step, under one read transaction: in WAL mode a reader
 * does not hold the node's writers back, and a copy made in steps would start over each time
 * the node commits between two of them, which under steady writes might be forever.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { databaseFileName, notePrefix } from './sqlite';

/** Pages copied by the one step after the first, which only sizes the copy: all of them. */
const allPages = 0x7fffffff;

export interface BackupSummary {
  readonly source: string;
  readonly destination: string;
  /** The node the file belongs to, as the file names it; undefined for a file no node has started on. */
  readonly nodeId: string | undefined;
  readonly bytes: number;
  /** Rows of keys (live, deleted or expired and not yet reaped) in the copy. */
  readonly keys: number;
  /** What SQLite's quick_check says of the copy: `ok`, or the first problem found. */
  readonly check: string;
}

export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

/** Copies `<dataDir>/kai.sqlite3` to `destination`, which must not exist, then opens the copy and checks it. */
export async function backupDataDir(dataDir: string, destination: string): Promise<BackupSummary> {
  const source = path.join(dataDir, databaseFileName);
  if (!fs.existsSync(source)) throw new BackupError(`${source} does not exist: is ${dataDir} a kai data dir?`);
  if (fs.existsSync(destination)) throw new BackupError(`${destination} exists already: name a new file`);
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    await db.backup(destination, { progress: () => allPages });
  } catch (error) {
    fs.rmSync(destination, { force: true });
    throw new BackupError(`cannot copy ${source}: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    db.close();
  }
  return { source, destination, bytes: fs.statSync(destination).size, ...inspectCopy(destination) };
}

/** What the copy holds, read back from it: the proof that it opens. */
function inspectCopy(destination: string): Pick<BackupSummary, 'nodeId' | 'keys' | 'check'> {
  const copy = new Database(destination, { readonly: true, fileMustExist: true });
  try {
    const check = copy.pragma('quick_check', { simple: true });
    const keys = copy.prepare<[], { keys: number }>('SELECT count(*) AS keys FROM items').get()?.keys ?? 0;
    const note = copy.prepare<[string], { value: unknown }>('SELECT value FROM meta WHERE name = ?').get(`${notePrefix}selfId`);
    return { nodeId: typeof note?.value === 'string' ? note.value : undefined, keys, check: String(check) };
  } finally {
    copy.close();
  }
}
