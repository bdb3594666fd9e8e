/**
 * Every stream the meta differential suites play: the meta commands of memcached 1.6.18 one by
 * one, their shared errors, and their mixing with classic commands.
 */
import { arithmeticStreams } from './arithmetic';
import type { MetaStream } from './commands';
import { debugStreams } from './debug';
import { deleteStreams } from './delete';
import { errorStreams } from './errors';
import { getStreams } from './get';
import { mixingStreams } from './mixing';
import { setStreams } from './set';

export { valueBytesMax, type MetaStream } from './commands';

export const metaStreams: readonly MetaStream[] = [
  ...getStreams,
  ...setStreams,
  ...deleteStreams,
  ...arithmeticStreams,
  ...debugStreams,
  ...errorStreams,
  ...mixingStreams,
];
