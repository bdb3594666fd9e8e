/**
 * The node's logger: JSON lines (pino), to a file or stdout. A person at a terminal gets
 * pino-pretty's readable lines instead; anything reading stdout through a pipe still gets JSON.
 *
 * Logging never holds the node: lines go through a bounded queue written asynchronously
 * (logging/line-sink.ts), and a destination that refuses them (a full disk) loses lines, counted,
 * never time. Warnings and errors are rate limited per message (logging/rate-limit.ts), so a flood
 * of bad frames or failing writes costs a few lines and a summary, not a line each.
 */
import pino, { type DestinationStream, type LogFn, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { LogLevel } from './config/fields';
import { LineSink } from './logging/line-sink';
import { LogRateLimiter, logRateLimitDefault, type LogRateLimit, type Suppressed } from './logging/rate-limit';

export type { Logger } from 'pino';
export { logQueueBytesMax } from './logging/line-sink';
export { logRateLimitDefault, type LogRateLimit } from './logging/rate-limit';

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Appends to this file; stdout when absent. */
  readonly file?: string;
  /** How repeated warnings and errors are limited; logRateLimitDefault when absent. */
  readonly rateLimit?: LogRateLimit;
}

/** How long closeLogger waits for buffered lines to reach their destination. */
export const logFlushTimeoutMs = 5000;

/** pino's number for `warn`: lines at this level and above are rate limited. */
const rateLimitedLevelMin = 40;

/** How to write the summary of a key's suppressed lines: the logger and level of the last one. */
interface SummaryWriter {
  readonly logger: Logger;
  readonly method: LogFn;
  readonly message: string;
}

/** What a logger made by createLogger shares with its children, found through their stream. */
interface LogState {
  readonly sink: LineSink | undefined;
  /** Every child made from the logger (pino copies a level into a child when it makes it). */
  readonly children: WeakRef<Logger>[];
  readonly limiter: LogRateLimiter<SummaryWriter>;
  readonly sweepTimer: NodeJS.Timeout;
}

const states = new WeakMap<object, LogState>();

function streamOf(logger: Logger): object {
  return (logger as unknown as Record<symbol, object>)[pino.symbols.streamSym];
}

export function createLogger(options: LoggerOptions): Logger {
  const limiter = new LogRateLimiter<SummaryWriter>(options.rateLimit ?? logRateLimitDefault);
  const hooks = {
    logMethod(this: Logger, args: Parameters<LogFn>, method: LogFn, level: number): void {
      if (level < rateLimitedLevelMin) return method.apply(this, args);
      const message = messageOf(args);
      const outcome = limiter.admit(`${level}:${message}`, Date.now(), { logger: this, method, message });
      if (outcome.ended !== undefined) writeSummary(outcome.ended, limiter.limit);
      if (outcome.write) method.apply(this, args);
    },
  };
  let sink: LineSink | undefined;
  let logger: Logger;
  const children: WeakRef<Logger>[] = [];
  const onChild = (child: Logger): void => {
    children.push(new WeakRef(child));
  };
  if (options.file === undefined && process.stdout.isTTY) {
    // Written synchronously: a terminal session is interactive, and nothing is lost at exit.
    logger = pino({ level: options.level, hooks, onChild }, pinoPretty({ sync: true, colorize: true }));
  } else {
    sink = LineSink.open(options.file);
    logger = pino({ level: options.level, hooks, onChild }, sink as DestinationStream);
  }
  const sweepTimer = setInterval(() => {
    for (const ended of limiter.sweep(Date.now())) writeSummary(ended, limiter.limit);
  }, limiter.limit.intervalMs);
  sweepTimer.unref();
  states.set(streamOf(logger), { sink, limiter, sweepTimer, children });
  return logger;
}

/**
 * Sets the level of `logger` and of every child made from it so far (`verbosity` changes a running
 * node's level). For a logger made elsewhere, only its own level changes.
 */
export function setLogLevel(logger: Logger, level: LogLevel): void {
  logger.level = level;
  const children = states.get(streamOf(logger))?.children;
  if (children === undefined) return;
  for (let index = children.length - 1; index >= 0; index--) {
    const child = children[index].deref();
    if (child === undefined) children.splice(index, 1);
    else child.level = level;
  }
}

/** The message of a log call: its string argument (`log.warn({...}, 'message')`), or an error's. */
function messageOf(args: Parameters<LogFn>): string {
  const text = (args as unknown[]).find((arg) => typeof arg === 'string');
  if (typeof text === 'string') return text;
  return args[0] instanceof Error ? args[0].message : '';
}

function writeSummary(ended: Suppressed<SummaryWriter>, limit: LogRateLimit): void {
  const { logger, method, message } = ended.summary;
  // The raw method, not the hooked one: a summary is never itself suppressed.
  method.call(logger, { suppressed: ended.count, intervalMs: limit.intervalMs }, `${message} (${ended.count} more suppressed)`);
}

/** What the logging of a node lost or held back, for `stats kai`. Zeros for a logger made elsewhere. */
export interface LogCounters {
  /** Lines lost: the destination refused them (a full disk) or the queue was full. */
  readonly linesDropped: number;
  /** Writes the destination failed. */
  readonly writeFailures: number;
  /** Warnings and errors held back by the rate limit. */
  readonly linesSuppressed: number;
}

export function logCounters(logger: Logger): LogCounters {
  const state = states.get(streamOf(logger));
  const sink = state?.sink?.counters();
  return {
    linesDropped: sink?.linesDropped ?? 0,
    writeFailures: sink?.writeFailures ?? 0,
    linesSuppressed: state?.limiter.suppressedTotal ?? 0,
  };
}

/**
 * Writes the summaries still due and every queued line, and releases the log file. Call once, at
 * exit: the logger writes nothing after. Resolves after `logFlushTimeoutMs` at most, so a stuck
 * disk cannot hold the process.
 */
export async function closeLogger(logger: Logger, timeoutMs = logFlushTimeoutMs): Promise<void> {
  const stream = streamOf(logger);
  const state = states.get(stream);
  if (state === undefined) return;
  states.delete(stream);
  clearInterval(state.sweepTimer);
  for (const ended of state.limiter.drain()) writeSummary(ended, state.limiter.limit);
  await state.sink?.close(timeoutMs);
}
