/**
 * The node's logger: JSON lines (pino), to a file or stdout. A person at a terminal gets
 * pino-pretty's readable lines instead; anything reading stdout through a pipe still gets JSON.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { LogLevel } from './config/fields';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Appends to this file; stdout when absent. */
  readonly file?: string;
}

/** How long closeLogger waits for buffered lines to reach their destination. */
export const logFlushTimeoutMs = 5000;

/** Buffered destinations by logger, so closeLogger can drain what the logger itself cannot. */
type LogDestination = ReturnType<typeof pino.destination>;
const destinations = new WeakMap<Logger, LogDestination>();

export function createLogger(options: LoggerOptions): Logger {
  if (options.file === undefined && process.stdout.isTTY) {
    // Written synchronously: a terminal session is interactive, and nothing is lost at exit.
    return pino({ level: options.level }, pinoPretty({ sync: true, colorize: true }));
  }
  // Asynchronous writes keep logging off the request path; closeLogger drains them at exit.
  const destination = pino.destination({ dest: options.file ?? 1, sync: false, append: true });
  destination.on('error', (error: Error) => {
    process.stderr.write(`kai: log destination failed: ${error.message}\n`);
  });
  const logger = pino({ level: options.level }, destination as DestinationStream);
  destinations.set(logger, destination);
  return logger;
}

/**
 * Writes out every buffered line and releases the log file. Call once, at exit: the logger
 * writes nothing after. Resolves after `logFlushTimeoutMs` at most, so a stuck disk cannot
 * hold the process.
 */
export function closeLogger(logger: Logger): Promise<void> {
  const destination = destinations.get(logger);
  if (destination === undefined) return Promise.resolve();
  destinations.delete(logger);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, logFlushTimeoutMs);
    destination.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    destination.end();
  });
}
