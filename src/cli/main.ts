/**
 * The `kai` command line. Exit codes: 0 after a clean stop (or a command that succeeded), 1 when
 * the node fails to start or stop or a command fails (an unreachable node), 2 for a usage or
 * settings error. Errors are one line on stderr, `kai: <message>`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, oneLineMessage, settingFields, settingNames, type SettingName } from '../config/fields';
import { commandSecurity, defaultConfigFileName, loadSettings, type CommandSecurityFlags, type SettingsFlags } from '../config/load';
import type { ConnectionSecurity } from '../rpc/tcp-transport';
import { closeLogger, createLogger, type Logger } from '../log';
import type { RunningNode } from '../server/node';
import { parseFirstPort, parseNodeCount, runLocalCluster } from './local-cluster';
import { checkNode, clusterStatus, statusJson, statusTable } from './membership-commands';
import { CommandError, parseNodeAddress } from './node-request';
import { startFailure } from './start-errors';
import { leaveCommand, removeCommand, replaceCommand, transfersStatus, transfersTable } from './ring-commands';

export const exitCodes = { stopped: 0, failed: 1, usage: 2 } as const;

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
  const start = program
    .command('start')
    .description('start a node; flags override the config file, which overrides defaults')
    .helpOption('-h, --help', 'print this help');
  for (const name of settingNames) {
    const field = settingFields[name];
    const option = new Option(field.flag, `${field.description} (default: ${field.defaultText})`);
    settingOfAttribute.set(option.attributeName(), name);
    start.addOption(option);
  }
  start.option('--config <file>', `JSON config file (default: ./${defaultConfigFileName} when present)`);
  start.action((options: Record<string, unknown>) => startCommand(options));
  addMembershipCommands(program);
  return program;
}

/** Commander's name for each setting's option (`--seed` is `seed`), mapped to the setting. */
const settingOfAttribute = new Map<string, SettingName>();

function addMembershipCommands(program: Command): void {
  program
    .command('check-node')
    .description("tell the node at <node> (its internal API, host:port) about the node at <other>; they then gossip")
    .argument('<node>', 'internal API address of a running node')
    .argument('<other>', 'internal API address of the node it should know')
    .option('--cluster-secret-file <file>', "the nodes' cluster secret (default: the config file's cluster_secret_file)")
    .option('--tls-ca <file>', "speak TLS, checking the node's certificate against this CA (default: the config file's, when its tls covers internal)")
    .option('--tls-cert <file>', 'certificate presented to the node with --tls-ca (default: the config file\'s tls_cert_file)')
    .option('--tls-key <file>', 'private key of --tls-cert (default: the config file\'s tls_key_file)')
    .option('--config <file>', `JSON config file to read these from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help')
    .action(async (node: string, other: string, options: CommandOptions) => {
      const line = await checkNode(parseNodeAddress(node, '<node>'), parseNodeAddress(other, '<other>'), securityOf(options));
      process.stdout.write(`${line}\n`);
    });
  program
    .command('join')
    .description('make the node at <node> join the cluster of the node at <seed> (as check-node)')
    .argument('<node>', 'internal API address of the joining node')
    .argument('<seed>', 'internal API address of a member of the cluster')
    .option('--cluster-secret-file <file>', "the nodes' cluster secret (default: the config file's cluster_secret_file)")
    .option('--tls-ca <file>', "speak TLS, checking the node's certificate against this CA (default: the config file's, when its tls covers internal)")
    .option('--tls-cert <file>', 'certificate presented to the node with --tls-ca (default: the config file\'s tls_cert_file)')
    .option('--tls-key <file>', 'private key of --tls-cert (default: the config file\'s tls_key_file)')
    .option('--config <file>', `JSON config file to read these from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help')
    .action(async (node: string, seed: string, options: CommandOptions) => {
      const line = await checkNode(parseNodeAddress(node, '<node>'), parseNodeAddress(seed, '<seed>'), securityOf(options));
      process.stdout.write(`${line}\n`);
    });
  program
    .command('leave')
    .description('make the node at <node> hand its buckets to the others, leave the ring and stop')
    .argument('<node>', 'internal API address of the node that leaves')
    .option('--cluster-secret-file <file>', "the nodes' cluster secret (default: the config file's cluster_secret_file)")
    .option('--tls-ca <file>', "speak TLS, checking the node's certificate against this CA (default: the config file's, when its tls covers internal)")
    .option('--tls-cert <file>', 'certificate presented to the node with --tls-ca (default: the config file\'s tls_cert_file)')
    .option('--tls-key <file>', 'private key of --tls-cert (default: the config file\'s tls_key_file)')
    .option('--config <file>', `JSON config file to read these from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help')
    .action(async (node: string, options: CommandOptions) => {
      process.stdout.write(`${await leaveCommand(parseNodeAddress(node, '<node>'), securityOf(options))}\n`);
    });
  program
    .command('remove')
    .description('take a member that is down (or a seed never heard from) out of the ring, asking the node at <node>')
    .argument('<node>', 'internal API address of a running node')
    .argument('<member>', 'id of the member to remove (its internal address)')
    .option('--cluster-secret-file <file>', "the nodes' cluster secret (default: the config file's cluster_secret_file)")
    .option('--tls-ca <file>', "speak TLS, checking the node's certificate against this CA (default: the config file's, when its tls covers internal)")
    .option('--tls-cert <file>', 'certificate presented to the node with --tls-ca (default: the config file\'s tls_cert_file)')
    .option('--tls-key <file>', 'private key of --tls-cert (default: the config file\'s tls_key_file)')
    .option('--config <file>', `JSON config file to read these from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help')
    .action(async (node: string, member: string, options: CommandOptions) => {
      process.stdout.write(`${await removeCommand(parseNodeAddress(node, '<node>'), member, securityOf(options))}\n`);
    });
  program
    .command('replace')
    .description('give every bucket of member <old> to the running node at <new>, asking the node at <node>')
    .argument('<node>', 'internal API address of a running member')
    .argument('<old>', 'id of the member to replace')
    .argument('<new>', 'internal API address of the new node, started and not yet joined')
    .option('--cluster-secret-file <file>', "the nodes' cluster secret (default: the config file's cluster_secret_file)")
    .option('--tls-ca <file>', "speak TLS, checking the node's certificate against this CA (default: the config file's, when its tls covers internal)")
    .option('--tls-cert <file>', 'certificate presented to the node with --tls-ca (default: the config file\'s tls_cert_file)')
    .option('--tls-key <file>', 'private key of --tls-cert (default: the config file\'s tls_key_file)')
    .option('--config <file>', `JSON config file to read these from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help')
    .action(async (node: string, old: string, replacement: string, options: CommandOptions) => {
      const line = await replaceCommand(parseNodeAddress(node, '<node>'), old, parseNodeAddress(replacement, '<new>'), securityOf(options));
      process.stdout.write(`${line}\n`);
    });
  program
    .command('transfers')
    .description('show the bucket transfers of the ring change in progress, member by member')
    .requiredOption('--node <host:port>', 'internal API address of a running node')
    .option('--json', 'print {"version", "changing", "rows": [{"member", "progress"}, ...]}')
    .option('--cluster-secret-file <file>', "the nodes' cluster secret (default: the config file's cluster_secret_file)")
    .option('--tls-ca <file>', "speak TLS, checking the node's certificate against this CA (default: the config file's, when its tls covers internal)")
    .option('--tls-cert <file>', 'certificate presented to the node with --tls-ca (default: the config file\'s tls_cert_file)')
    .option('--tls-key <file>', 'private key of --tls-cert (default: the config file\'s tls_key_file)')
    .option('--config <file>', `JSON config file to read these from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help')
    .action(async (options: CommandOptions & { node: string; json?: boolean }) => {
      const status = await transfersStatus(parseNodeAddress(options.node, '--node'), securityOf(options));
      process.stdout.write(`${options.json ? JSON.stringify(status) : transfersTable(status)}\n`);
    });
  program
    .command('status')
    .description('print the members a node knows, up or down, joining or leaving, with their share of the ring')
    .requiredOption('--node <host:port>', 'internal API address of a running node')
    .option('--json', 'print {"members": [{"id", "address", "status", "ring", "zone", "ownership", "plannedOwnership", "hintsPending", "hintBytesPending"}, ...], "ringVersion", "changing", "quorum", "storage"}')
    .option('--cluster-secret-file <file>', "the nodes' cluster secret (default: the config file's cluster_secret_file)")
    .option('--tls-ca <file>', "speak TLS, checking the node's certificate against this CA (default: the config file's, when its tls covers internal)")
    .option('--tls-cert <file>', 'certificate presented to the node with --tls-ca (default: the config file\'s tls_cert_file)')
    .option('--tls-key <file>', 'private key of --tls-cert (default: the config file\'s tls_key_file)')
    .option('--config <file>', `JSON config file to read these from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help')
    .action(async (options: CommandOptions & { node: string; json?: boolean }) => {
      const status = await clusterStatus(parseNodeAddress(options.node, '--node'), securityOf(options));
      process.stdout.write(`${options.json ? statusJson(status) : statusTable(status)}\n`);
    });
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

/** The options every command that talks to a node takes. */
interface CommandOptions extends CommandSecurityFlags {
  readonly config?: string;
}

function securityOf(options: CommandOptions): ConnectionSecurity {
  return commandSecurity(options, { configFile: options.config });
}

/** bin/kai, from dist/src/cli where this file runs once compiled. */
function kaiBinPath(): string {
  return path.resolve(__dirname, '../../../bin/kai');
}

async function startCommand(options: Record<string, unknown>): Promise<void> {
  const configFile = typeof options.config === 'string' ? options.config : undefined;
  const settings = loadSettings(flagsFrom(options), { configFile });
  const log = createLogger({ level: settings.logLevel, file: settings.logFile });
  let node: RunningNode;
  try {
    // Loaded only here, so help and settings errors never load storage or native modules.
    const { startNode } = await import('../server/node');
    node = await startNode(settings, log);
  } catch (error) {
    const failure = startFailure(error);
    // The line on stderr says it all for an operating failure: the log repeats it only when it
    // goes to a file, where stderr is not kept. A failure the line cannot explain keeps its stack.
    if (!failure.explained) log.fatal({ err: error }, 'cannot start');
    else if (settings.logFile !== undefined) log.fatal({ reason: failure.line }, 'cannot start');
    await closeLogger(log);
    exitWithError(failure.line, exitCodes.failed);
  }
  log.info({ nodeId: node.nodeId, memcachePort: node.memcachePort, port: node.port, dataDir: settings.dataDir }, 'listening');
  const stopper = new Stopper(node, log, settings.stopTimeoutMs);
  stopOnSignals(stopper, log);
  stopWhenLeft(node, stopper, log);
  reloadOnHangup(node, log);
  injectFaultsOnSignal(node, log);
}

function flagsFrom(options: Record<string, unknown>): SettingsFlags {
  const flags: Record<string, unknown> = {};
  for (const [attribute, name] of settingOfAttribute) {
    if (typeof options[attribute] === 'string') flags[name] = options[attribute];
  }
  return flags as SettingsFlags;
}

/**
 * Stops the node once, however many reasons to stop arrive, within `stopTimeoutMs` in all: a
 * client that never leaves, a peer that never answers, a disk that never completes a write or a
 * log that cannot be written can delay the exit, never prevent it. Past the deadline the process
 * says so and exits with status 1.
 */
class Stopper {
  private stopping = false;

  constructor(
    private readonly node: RunningNode,
    private readonly log: Logger,
    private readonly stopTimeoutMs: number,
  ) {}

  get started(): boolean {
    return this.stopping;
  }

  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    const startedAtMs = Date.now();
    // Not unref'd: this timer is what ends a stop that something else holds up.
    const deadline = setTimeout(() => {
      this.log.error({ stopTimeoutMs: this.stopTimeoutMs }, 'stop deadline passed; exiting without a clean stop');
      process.stderr.write(`kai: stop deadline of ${this.stopTimeoutMs} ms passed; exiting\n`);
      // The log gets a short flush of its own: the deadline is already spent.
      void finish(this.log, exitCodes.failed, deadlineLogFlushMs);
    }, this.stopTimeoutMs);
    this.node.stop().then(
      () => {
        clearTimeout(deadline);
        this.log.info({ stopMs: Date.now() - startedAtMs }, 'stopped');
        return finish(this.log, exitCodes.stopped, this.remainingMs(startedAtMs));
      },
      (error: unknown) => {
        clearTimeout(deadline);
        this.log.error({ err: error }, 'stop failed');
        process.stderr.write(`kai: stop failed: ${oneLineMessage(error)}\n`);
        return finish(this.log, exitCodes.failed, this.remainingMs(startedAtMs));
      },
    );
  }

  /** What is left of the deadline for flushing the log, and never nothing. */
  private remainingMs(startedAtMs: number): number {
    return Math.max(deadlineLogFlushMs, this.stopTimeoutMs - (Date.now() - startedAtMs));
  }
}

/** How long the log may take to flush once the stop deadline has passed. */
const deadlineLogFlushMs = 500;

/**
 * The first SIGTERM or SIGINT stops the node gracefully and exits 0. A second one exits at once,
 * for an operator who will not wait for in-flight requests.
 */
function stopOnSignals(stopper: Stopper, log: Logger): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopper.started) process.exit(128 + (os.constants.signals[signal] ?? 0));
    log.info({ signal }, 'stopping');
    stopper.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** After `kai leave` the node stops by itself once it has left the ring. */
function stopWhenLeft(node: RunningNode, stopper: Stopper, log: Logger): void {
  void node.left.then(() => {
    log.info('left the ring; stopping');
    stopper.stop();
  });
}

/**
 * SIGHUP reads the auth file again, as it does for memcached. Handled even without an auth file,
 * so that a hangup never kills the node (Node's default for SIGHUP is to exit).
 */
function reloadOnHangup(node: RunningNode, log: Logger): void {
  process.on('SIGHUP', () => {
    // The node logs the outcome itself, including a bad file that leaves the old credentials.
    if (node.reloadAuthentication() === undefined) log.info('SIGHUP: no auth file to reload');
  });
}

/**
 * Fault injection for tests of a dying commit worker, only with KAI_FAULT_INJECTION=1 in the
 * environment: SIGUSR2 then ends the worker thread at once, as a crash of it would. Without it,
 * SIGUSR2 keeps Node's default (the process ends), as before.
 */
function injectFaultsOnSignal(node: RunningNode, log: Logger): void {
  if (process.env.KAI_FAULT_INJECTION !== '1') return;
  process.on('SIGUSR2', () => {
    log.warn('SIGUSR2 with KAI_FAULT_INJECTION=1: ending the commit worker');
    node.killCommitWorker();
  });
}

let finishing = false;

/** Flushes the log for `logFlushMs` at most, then exits: once, whoever asks first. */
async function finish(log: Logger, exitCode: number, logFlushMs: number): Promise<void> {
  if (finishing) return;
  finishing = true;
  await closeLogger(log, logFlushMs);
  process.exit(exitCode);
}

function exitWithError(message: string, exitCode: number): never {
  process.stderr.write(`kai: ${message}\n`);
  process.exit(exitCode);
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
