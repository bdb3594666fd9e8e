/**
 * The command lines of memcached's statistics and tooling commands, read as memcached 1.6.18
 * reads them: `stats [group [args...]]`, `stats cachedump <class> <limit>`,
 * `lru_crawler metadump <classes>` and `watch [streams...]`. Pure, like command-line.ts, whose
 * token counting they share.
 */
import type { ErrorCode } from '../../errors';
import type { Command } from '../command';
import { slabClassesMax, watchStreams, type ToolCommand, type WatchStream } from '../tool-commands';
import type { LineOutcome, TokenView } from './command-line';
import { parseUint32 } from './numbers';

function error(code: ErrorCode, silent = false): LineOutcome {
  return { kind: 'error', code, silent };
}

function command(value: Command): LineOutcome {
  return { kind: 'command', command: value };
}

function tool(value: ToolCommand): LineOutcome {
  return command({ op: 'tool', tool: value });
}

const latin1 = (token: Buffer): string => token.toString('latin1');

/**
 * `stats`: the group is the first word; `detail` keeps its argument (its checks are the
 * dispatcher's, shared with the binary protocol), `cachedump` is a key dump. Other groups ignore
 * further words, as memcached does.
 */
export function parseStats(view: TokenView): LineOutcome {
  const group = view.tokens[1] === undefined ? '' : latin1(view.tokens[1]);
  if (group === 'cachedump') return parseCachedump(view);
  if (group === 'detail') {
    // memcached reads the argument only when the line has one; without it, the usage error.
    const args = view.count >= 4 ? [latin1(view.tokens[2])] : [];
    return command({ op: 'stats', group, args });
  }
  return command({ op: 'stats', group });
}

function parseCachedump(view: TokenView): LineOutcome {
  if (view.count < 5) return error('KAI_MISSING_ARGUMENTS');
  const slabClass = parseUint32(view.tokens[2]);
  const limit = parseUint32(view.tokens[3]);
  if (slabClass === undefined || limit === undefined) return error('KAI_BAD_COMMAND_LINE');
  if (slabClass >= slabClassesMax) return error('KAI_ILLEGAL_SLAB_CLASS');
  return tool({ kind: 'cachedump', slabClass, limit });
}

/**
 * `lru_crawler metadump <what>`: `all` and `hash` list every key; otherwise a comma-separated list
 * of slab classes, each from 1 to 63, empty items skipped (memcached splits with strtok). Its other
 * subcommands run memcached's LRU crawler, which kai does not have: they answer ERROR.
 */
export function parseLruCrawler(view: TokenView): LineOutcome {
  if (view.count !== 4 || latin1(view.tokens[1]) !== 'metadump') return error('KAI_UNKNOWN_COMMAND');
  const what = latin1(view.tokens[2]);
  if (what === 'all' || what === 'hash') return tool({ kind: 'metadump', slabClasses: 'all' });
  const slabClasses: number[] = [];
  for (const item of what.split(',')) {
    if (item === '') continue;
    const slabClass = parseUint32(Buffer.from(item, 'latin1'));
    if (slabClass === undefined || slabClass < 1 || slabClass >= slabClassesMax) return error('KAI_BAD_SLAB_CLASS_LIST');
    slabClasses.push(slabClass);
  }
  if (slabClasses.length === 0) return error('KAI_NOTHING_TO_CRAWL');
  return tool({ kind: 'metadump', slabClasses });
}

const knownStreams: ReadonlySet<string> = new Set(watchStreams);

/**
 * `watch [streams...]`: fetchers when none is named. An unknown name answers ERROR; memcached
 * reads `noreply` as the last word first, so `watch ... noreply` fails on that word, silently.
 */
export function parseWatch(view: TokenView): LineOutcome {
  const noreply = view.noreply;
  const names = view.tokens.slice(1, view.count - 1).map(latin1);
  if (names.length === 0) return tool({ kind: 'watch', streams: ['fetchers'] });
  if (!names.every((name) => knownStreams.has(name))) return error('KAI_UNKNOWN_COMMAND', noreply);
  return tool({ kind: 'watch', streams: names as WatchStream[] });
}
