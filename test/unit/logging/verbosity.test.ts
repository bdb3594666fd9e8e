// memcached's verbosity levels as log levels: never quieter than configured, 0 back to the configured level.
import { logLevelForVerbosity } from '../../../src/logging/verbosity';

test.each([
  ['warn', 0, 'warn'],
  ['warn', 1, 'info'],
  ['warn', 2, 'debug'],
  ['warn', 7, 'debug'],
  ['trace', 1, 'trace'],
  ['info', 1, 'info'],
  ['silent', 2, 'debug'],
  ['silent', 0, 'silent'],
] as const)('configured %s at verbosity %d logs at %s', (configured, verbosity, level) => {
  expect(logLevelForVerbosity(configured, verbosity)).toBe(level);
});
