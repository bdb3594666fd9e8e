/**
 * memcached's flush deadline, as one node holds it: once the deadline has come, every version
 * written before it reads as absent. The coordinator applies it to every write it coordinates,
 * whichever node the client talks to; flush_all sets it on every node of the cluster.
 */
import type { Version } from '../storage/record';
import type { Visibility } from './specs';

export class FlushDeadline {
  /** Unix ms; 0 for none. A later flush_all replaces it. */
  deadlineMs = 0;

  /** The versions a client may see at `nowMs`: none written before a deadline that has come. */
  readonly visible: Visibility = (versions: readonly Version[], nowMs: number): readonly Version[] => {
    const deadlineMs = this.deadlineMs;
    if (deadlineMs === 0 || nowMs < deadlineMs) return versions;
    return versions.filter((version) => version.writtenAtMs >= deadlineMs);
  };
}
