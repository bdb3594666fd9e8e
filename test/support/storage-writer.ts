/**
 * Writes records into a SqliteStore in a loop and prints each key on stdout once its write has
 * resolved, so a test can kill this process at any moment and check that every printed key
 * survived. Usage: node dist/test/support/storage-writer.js <dataDir>
 *
 * Stdout to a pipe is synchronous on Linux, so a printed key has left the process.
 */
import type { StoredRecord } from '../../src/storage';
import { openSqliteStore } from '../../src/storage/sqlite';

/** Writes issued together each round, so rounds exercise group commit. */
const writesPerRound = 16;
/** Bounds the run should the test fail to kill the process. */
const writesMax = 1_000_000;
const lifetimeMs = 60_000;

export function valueOf(key: string): Buffer {
  return Buffer.from(`value of ${key} `.repeat(8));
}

function recordOf(key: string, index: number): StoredRecord {
  return {
    key: Buffer.from(key),
    bucket: index % 64,
    versions: [
      {
        clock: [{ node: 'writer', counter: 1, timestampMs: index }],
        value: valueOf(key),
        flags: index,
        expiresAtMs: 0,
        tombstone: false,
        writtenAtMs: index,
      },
    ],
  };
}

async function main(dataDir: string): Promise<void> {
  const store = openSqliteStore({ dataDir });
  const deadlineMs = Date.now() + lifetimeMs;
  let index = 0;
  while (index < writesMax && Date.now() < deadlineMs) {
    const round: Promise<void>[] = [];
    for (let slot = 0; slot < writesPerRound; slot += 1, index += 1) {
      const key = `key-${index}`;
      round.push(store.write(recordOf(key, index)).then(() => void process.stdout.write(`${key}\n`)));
    }
    await Promise.all(round);
  }
  await store.close();
}

if (require.main === module) {
  const dataDir = process.argv[2];
  if (dataDir === undefined) {
    process.stderr.write('usage: storage-writer <dataDir>\n');
    process.exit(2);
  }
  main(dataDir).catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
}
