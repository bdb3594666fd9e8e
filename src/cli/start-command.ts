/**
 * `kai start`: one node in the foreground, with a flag for every setting. It runs until SIGTERM or
 * SIGINT (a graceful stop, bounded by --stop-timeout), or until it has left the ring after
 * `kai leave`; SIGHUP reloads the auth file.
 */
import os from 'node:os';
import { Command, Option } from 'commander';
import { oneLineMessage, settingFields, settingNames, type SettingName } from '../config/fields';
import { defaultConfigFileName, loadSettings, type SettingsFlags } from '../config/load';
import { closeLogger, createLogger, type Logger } from '../log';
import type { RunningNode } from '../server/node';
import { exitCodes, exitWithError } from './exit';
import { startFailure } from './start-errors';

export function addStartCommand(program: Command): void {
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
}

/** Commander's name for each setting's option (`--seed` is `seed`), mapped to the setting. */
const settingOfAttribute = new Map<string, SettingName>();

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
  log.info({ nodeId: node.nodeId, memcachePort: node.memcachePort, port: node.port, adminPort: node.adminPort, dataDir: settings.dataDir }, 'listening');
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
