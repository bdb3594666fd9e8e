/**
 * `kai backup <file>`: a consistent copy of a node's SQLite file, taken while the node runs
 * (storage/backup.ts), checked by opening it. Restoring is stopping the node, putting the copy in
 * its data dir as kai.sqlite3 (with no kai.sqlite3-wal or -shm beside it) and starting it again
 * on the same address (docs/operations.md, *Backups*).
 */
import path from 'node:path';
import { Command } from 'commander';
import { configuredDataDir, defaultConfigFileName } from '../config/load';
import { CommandError } from './node-request';
import { bytesText } from './table';

export function addBackupCommand(program: Command): void {
  program
    .command('backup')
    .description("copy a node's SQLite file while it runs, consistently (SQLite's online backup), and check the copy")
    .argument('<file>', 'where to write the copy; must not exist')
    .option('--data-dir <dir>', "the node's data dir (default: the config file's data_dir, else ./data)")
    .option('--config <file>', `JSON config file to read data_dir from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help')
    .action(async (file: string, options: { dataDir?: string; config?: string }) => {
      const dataDir = options.dataDir === undefined ? configuredDataDir({ configFile: options.config }) : path.resolve(options.dataDir);
      // Loaded only here, so other commands never load the native SQLite module.
      const { backupDataDir, BackupError } = await import('../storage/backup');
      try {
        const summary = await backupDataDir(dataDir, path.resolve(file));
        if (summary.check !== 'ok') throw new CommandError(`the copy in ${summary.destination} fails SQLite's check: ${summary.check}`);
        const node = summary.nodeId === undefined ? '' : ` (node ${summary.nodeId})`;
        process.stdout.write(
          `${summary.source}${node} copied to ${summary.destination}: ${bytesText(summary.bytes)}, ${summary.keys} keys; the copy opens and passes SQLite's check\n`,
        );
      } catch (error) {
        if (error instanceof BackupError) throw new CommandError(error.message);
        throw error;
      }
    });
}
