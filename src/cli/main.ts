/**
 * The `kai` command line: `kai start` (start-command.ts), the commands that talk to running nodes
 * (node-commands.ts), `kai cluster` (local-cluster.ts) and `kai backup` (backup-command.ts). Exit
 * codes and the one-line error format are in exit.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { ConfigError, oneLineMessage } from '../config/fields';
import { addBackupCommand } from './backup-command';
import { exitCodes, exitWithError } from './exit';
import { parseFirstPort, parseNodeCount, runLocalCluster } from './local-cluster';
import { addNodeCommands } from './node-commands';
import { CommandError } from './node-request';
import { addStartCommand } from './start-command';

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed help, the version or its error line.
      process.exit(error.exitCode === 0 ? exitCodes.stopped : exitCodes.usage);
    }
    if (error instanceof ConfigError) exitWithError(error.message, exitCodes.usage);
    if (error instanceof CommandError) exitWithError(error.message, exitCodes.failed);
    exitWithError(oneLineMessage(error), exitCodes.failed);
  }
}

function buildProgram(): Command {
  const program = new Command('kai')
    .description('A Dynamo-style distributed key-value store that speaks the memcached protocol.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .addHelpText('after', '\nRun `kai start --help` for every setting.')
    // Set before adding commands: commands copy these settings from their parent.
    .exitOverride()
    .configureOutput({ outputError: (text) => process.stderr.write(`kai: ${oneLineMessage(text.replace(/^error: /, ''))}\n`) });
  addStartCommand(program);
  addNodeCommands(program);
  addClusterCommand(program);
  addBackupCommand(program);
  return program;
}

function addClusterCommand(program: Command): void {
  program
    .command('cluster')
    .description('start a local cluster on 127.0.0.1 in the foreground, linked by gossip; Ctrl-C stops it')
    .option('--nodes <count>', 'nodes to start', '3')
    .option('--base-dir <dir>', 'directory of the nodes\' data dirs and logs', './kai-cluster')
    .option('--port <port>', 'internal API port of the first node, the next nodes count up (default: the last run\'s, or free ports)')
    .option('--memcache-port <port>', 'memcache port of the first node, the next nodes count up (default: the last run\'s, or free ports)')
    .helpOption('-h, --help', 'print this help')
    .allowExcessArguments(false)
    .action(async (options: { nodes: string; baseDir: string; port?: string; memcachePort?: string }) => {
      const nodes = parseNodeCount(options.nodes);
      const exitCode = await runLocalCluster(
        kaiBinPath(),
        {
          nodes,
          baseDir: options.baseDir,
          firstPort: options.port === undefined ? undefined : parseFirstPort(options.port, '--port', nodes),
          firstMemcachePort:
            options.memcachePort === undefined ? undefined : parseFirstPort(options.memcachePort, '--memcache-port', nodes),
        },
        (line) => process.stdout.write(`${line}\n`),
      );
      process.exit(exitCode);
    });
}

/** bin/kai, from dist/src/cli where this file runs once compiled. */
function kaiBinPath(): string {
  return path.resolve(__dirname, '../../../bin/kai');
}

/** Read at run time from the nearest package.json above this file, wherever it was compiled to. */
function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const parsed: unknown = JSON.parse(fs.readFileSync(candidate, 'utf8'));
      const version = (parsed as { version?: unknown }).version;
      return typeof version === 'string' ? version : 'unknown';
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}
