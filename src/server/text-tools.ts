/**
 * The text connection's streamed tooling commands: the key dumps memcached-tool and memcdump read
 * (`lru_crawler metadump`, `stats cachedump`) and `watch`. A dump is written page by page as the
 * cluster's keys are read (listing/), each page only once the one before is written and the client
 * reads on, so a dump of any size holds one page in memory. A watcher's lines wait in its bounded
 * buffer (watchers.ts) until the client reads them.
 */
import { KaiError, asKaiError } from '../errors';
import type { ListedKey } from '../listing';
import { cachedumpLine, dumpEndLine, metadumpLine, printableInCachedump } from '../protocol/text/key-dump-lines';
import { encodeError } from '../protocol/text/encoder';
import { itemSlabClass, type ToolCommand } from '../protocol/tool-commands';
import type { StreamWriter } from './connection';
import type { Watcher, Watchers } from './watchers';

/**
 * Key dumps a node runs at once. memcached runs one crawler and answers BUSY to a second; kai lets
 * a few run, each costing a page of records and the reads of the walk.
 */
export const keyDumpsAtOnceMax = 4;

/** What a text connection's tooling commands use from the node. */
export interface ConnectionTools {
  readonly watchers: Watchers;
  /** The cluster's live keys, page by page (listing/). */
  listKeys(): AsyncIterable<readonly ListedKey[]>;
  readonly keyDumps: KeyDumpSlots;
}

/** The bound on key dumps running at once. */
export class KeyDumpSlots {
  private running = 0;

  constructor(private readonly max = keyDumpsAtOnceMax) {}

  get inUse(): number {
    return this.running;
  }

  tryTake(): boolean {
    if (this.running >= this.max) return false;
    this.running++;
    return true;
  }

  release(): void {
    this.running--;
  }
}

type KeyDump = Extract<ToolCommand, { kind: 'metadump' | 'cachedump' }>;

/** Whether the dump asks for the one slab class kai files every item in (others are empty). */
function namesItemClass(dump: KeyDump): boolean {
  if (dump.kind === 'cachedump') return dump.slabClass === itemSlabClass;
  return dump.slabClasses === 'all' || dump.slabClasses.includes(itemSlabClass);
}

const endChunk = Buffer.from(dumpEndLine, 'latin1');

/**
 * Writes a key dump then END. A dump that cannot finish (no replica of a bucket answers) ends with
 * the error line instead, and the connection closes: memcached-tool reads until END, and would
 * otherwise wait for it without end.
 */
export async function streamKeyDump(out: StreamWriter, dump: KeyDump, tools: ConnectionTools): Promise<void> {
  if (!tools.keyDumps.tryTake()) {
    out.end([encodeError(new KaiError('KAI_KEY_DUMPS_BUSY'))]);
    return;
  }
  try {
    await out.ready();
    if (namesItemClass(dump)) await writeKeys(out, dump, tools);
    out.end([endChunk]);
  } catch (error) {
    if (error instanceof KaiError && error.code === 'KAI_CLIENT_GONE') throw error;
    out.end([encodeError(asKaiError(error))], true);
  } finally {
    tools.keyDumps.release();
  }
}

async function writeKeys(out: StreamWriter, dump: KeyDump, tools: ConnectionTools): Promise<void> {
  // A cachedump's limit of 0 means every key, as in memcached.
  const limit = dump.kind === 'cachedump' && dump.limit > 0 ? dump.limit : Number.POSITIVE_INFINITY;
  let shown = 0;
  for await (const page of tools.listKeys()) {
    let text = '';
    for (const item of page) {
      if (shown >= limit) break;
      if (dump.kind === 'metadump') {
        text += metadumpLine(item);
      } else {
        if (!printableInCachedump(item.key)) continue;
        text += cachedumpLine(item);
      }
      shown++;
    }
    if (text !== '') await out.write([Buffer.from(text, 'latin1')]);
    if (shown >= limit) return;
  }
}

const watchingChunk = Buffer.from('OK\r\n', 'latin1');

/**
 * Writes OK, then the watcher's lines as they come, until the client leaves or the node stops:
 * `leaving` resolves when the client closes or half-closes its side (memcached drops a watcher
 * whose socket reads end of input) or the node stops, and the connection then closes.
 */
export async function streamWatch(out: StreamWriter, watcher: Watcher, watchers: Watchers, leaving: Promise<void>): Promise<void> {
  const left = leaving.then(() => undefined);
  try {
    await out.ready();
    await out.write([watchingChunk]);
    for (;;) {
      const lines = await Promise.race([watcher.take(), left]);
      if (lines === undefined || lines.length === 0) break;
      await out.write(lines);
    }
    out.end([], true);
  } finally {
    watchers.remove(watcher);
  }
}
