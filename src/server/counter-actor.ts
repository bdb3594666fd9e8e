/**
 * The name this node's counter operations are credited to (src/counter). It names the data dir,
 * not only the node: a node whose data was lost (a wiped disk, a new empty data dir) comes back as
 * a new actor. Under its old name it would count from totals it no longer holds, and the larger
 * totals its peers keep for that name would swallow what it adds, losing acknowledged increments.
 */
import type { Env } from '../env';

const noteName = 'counterActor';
/** Base-36 characters drawn for a data dir's part of the name: 36^8 makes a repeat unlikely. */
const suffixLength = 8;

export interface NoteStore {
  readNote(name: string): string | undefined;
  writeNote(name: string, value: string): void;
}

/** The data dir's counter actor, created and kept in the store's notes on first use. */
export function counterActorOf(store: NoteStore, nodeId: string, env: Env): string {
  const kept = store.readNote(noteName);
  if (kept !== undefined) return kept;
  let suffix = '';
  while (suffix.length < suffixLength) suffix += Math.floor(env.random() * 36).toString(36);
  const actor = `${nodeId}/${suffix}`;
  store.writeNote(noteName, actor);
  return actor;
}
