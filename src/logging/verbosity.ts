/**
 * memcached's `verbosity` levels as kai's log levels. memcached prints nothing extra at 0, errors
 * and warnings at 1 (-v) and each client command at 2 (-vv). kai logs warnings and errors at any
 * level it may be started with, so the mapping only ever makes the log more verbose than the
 * configured `--log-level`: 0 goes back to it, 1 shows at least `info`, 2 at least `debug`.
 */
import type { LogLevel } from '../config/fields';

/** pino's numbers: a smaller number is a more verbose level. */
const levelValues: Readonly<Record<LogLevel, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};

/** The least verbose level each memcached verbosity shows, from 1 up. */
const levelsByVerbosity: readonly LogLevel[] = ['info', 'debug'];

export function logLevelForVerbosity(configured: LogLevel, verbosity: number): LogLevel {
  if (verbosity <= 0) return configured;
  const wanted = levelsByVerbosity[Math.min(verbosity, levelsByVerbosity.length) - 1];
  return levelValues[wanted] < levelValues[configured] ? wanted : configured;
}
