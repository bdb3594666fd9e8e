/**
 * Client load and replica checks for the healing fault tests: bulk writes that must all be
 * acknowledged, polls of what each replica holds (over the internal API, no client read), and a
 * seeded random source so a run's choices can be replayed. Plain Node.
 */
import type { WireVersion } from '../../src/rpc/messages';
import { delay } from '../support/servers';
import type { ReachableNode } from './cluster';
import { MemcacheConnection } from './memcache-client';
import { liveValues, replicaVersions, versionsText, type InternalNode } from './replicas';

/** mulberry32: a small seeded generator, so a failing run's random choices can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

/** Attempts per item in writeAll, and the pause between two: a node that briefly holds its peers down (a false suspicion on a loaded host lasts about a second) is waited out. */
const writeAttemptsMaxDefault = 10;
const writeRetryDelayMs = 300;

/**
 * Sets every item through `nodes`, `connectionsPerNode` connections each, items handed out in
 * order; a failed set is tried again, after a pause, up to `attemptsMax` times in all (with the
 * same value: a failed attempt that did land wrote the same bytes). Returns what was acknowledged,
 * what never was, and how many attempts failed on the way.
 */
export async function writeAll(
  nodes: readonly ReachableNode[],
  items: readonly KeyValue[],
  options: { readonly connectionsPerNode?: number; readonly attemptsMax?: number } = {},
): Promise<{ readonly acknowledged: Map<string, string>; readonly failed: string[]; readonly retries: number }> {
  const connections = nodes.flatMap((node) => Array.from({ length: options.connectionsPerNode ?? 8 }, () => new MemcacheConnection(node)));
  const attemptsMax = options.attemptsMax ?? writeAttemptsMaxDefault;
  const acknowledged = new Map<string, string>();
  const failed: string[] = [];
  let retries = 0;
  let next = 0;
  await Promise.all(
    connections.map(async (connection) => {
      try {
        while (next < items.length) {
          const item = items[next++];
          let lastError: unknown;
          for (let attempt = 0; attempt < attemptsMax; attempt++) {
            if (attempt > 0) {
              retries++;
              await delay(writeRetryDelayMs);
            }
            try {
              await connection.set(item.key, item.value);
              acknowledged.set(item.key, item.value);
              break;
            } catch (error) {
              lastError = error;
            }
          }
          if (!acknowledged.has(item.key)) failed.push(`${item.key}: ${String(lastError)}`);
        }
      } finally {
        connection.close();
      }
    }),
  );
  return { acknowledged, failed, retries };
}

/** Whether `versions` hold exactly one live value, `value`: the replica has the latest write and nothing it overwrote. */
export function holdsExactly(versions: readonly WireVersion[] | undefined, value: string, nowMs = Date.now()): boolean {
  if (versions === undefined) return false;
  const live = liveValues(versions, nowMs);
  return live.length === 1 && live[0] === value;
}

export interface ReplicaPoll {
  readonly ok: boolean;
  /** From `startedMs` to the poll that found every key held (or to giving up). */
  readonly elapsedMs: number;
  readonly polls: number;
  /** Keys not held at the last poll, with what the replica answered for the first few. */
  readonly pending: readonly string[];
}

/**
 * Polls `node`'s own versions (replicaFetch) until `holds` accepts every key, for at most
 * `timeoutMs` after `startedMs`. Each poll fetches only the keys not yet held; once all are, one
 * more fetch of every key confirms that none went back.
 */
export async function pollReplicaHolds(
  node: InternalNode,
  keys: readonly string[],
  holds: (key: string, versions: readonly WireVersion[]) => boolean,
  options: { readonly startedMs: number; readonly timeoutMs: number; readonly intervalMs?: number },
): Promise<ReplicaPoll> {
  let pending = [...keys];
  let polls = 0;
  let lastError = '';
  let elapsedMs = 0;
  for (;;) {
    polls++;
    try {
      const held = await replicaVersions(node, pending);
      const before = pending;
      pending = before.filter((key) => !holds(key, held.get(key) ?? []));
      lastError = pending.slice(0, 3).map((key) => `${key}: ${versionsText(held.get(key) ?? []) || 'nothing'}`).join('; ');
    } catch (error) {
      lastError = `fetch failed: ${String(error)}`;
    }
    elapsedMs = Date.now() - options.startedMs;
    if (pending.length === 0) break;
    if (elapsedMs >= options.timeoutMs) return { ok: false, elapsedMs, polls, pending: [...pending.slice(0, 20), `(${pending.length} in all; ${lastError})`] };
    await delay(options.intervalMs ?? 250);
  }
  const all = await replicaVersions(node, keys);
  const wentBack = keys.filter((key) => !holds(key, all.get(key) ?? []));
  return { ok: wentBack.length === 0, elapsedMs, polls, pending: wentBack.map((key) => `${key} went back: ${versionsText(all.get(key) ?? [])}`) };
}

/** Every running node's versions of every key, by node id. */
export type ReplicaSnapshot = Map<string, Map<string, WireVersion[]>>;

export async function snapshotReplicas(nodes: readonly InternalNode[], keys: readonly string[]): Promise<ReplicaSnapshot> {
  const held = await Promise.all(nodes.map((node) => replicaVersions(node, keys)));
  return new Map(nodes.map((node, index) => [node.id, held[index]]));
}

/**
 * What a comparison of replicas looks at. `exact`: every version, tombstones and expired ones
 * included. `live`: the versions a read could return (neither tombstones nor expired), so a
 * replica still holding a dead record compares equal to one that has reaped it: the reaper
 * removes a dead record on each replica at its own time, and one it had to defer (a peer was
 * down) waits a minute (reapRetryMsDefault) before it is tried again.
 */
export type Comparison = 'exact' | 'live';

function comparedVersions(versions: readonly WireVersion[], comparison: Comparison, nowMs: number): readonly WireVersion[] {
  return comparison === 'exact' ? versions : versions.filter((v) => !v.tombstone && (v.expiresAtMs === 0 || v.expiresAtMs > nowMs));
}

/**
 * Keys whose replicas differ: for each key, every node in `replicasOf(key)` must hold the same
 * versions, and every other node of the snapshot none. Returns one line per differing key.
 */
export function divergence(
  snapshot: ReplicaSnapshot,
  keys: readonly string[],
  replicasOf: (key: string) => readonly string[],
  comparison: Comparison = 'exact',
): string[] {
  const nowMs = Date.now();
  const compared = (id: string, key: string): readonly WireVersion[] => comparedVersions(snapshot.get(id)?.get(key) ?? [], comparison, nowMs);
  const differing: string[] = [];
  for (const key of keys) {
    const replicas = replicasOf(key);
    const texts = replicas.map((id) => versionsText(compared(id, key)));
    const strays = [...snapshot.keys()].filter((id) => !replicas.includes(id) && compared(id, key).length > 0);
    if (new Set(texts).size > 1 || strays.length > 0) {
      const held = replicas.map((id) => `${id}: ${versionsText(snapshot.get(id)?.get(key) ?? []) || 'nothing'}`);
      const stray = strays.map((id) => `non-primary ${id}: ${versionsText(snapshot.get(id)?.get(key) ?? [])}`);
      differing.push(`${key}: ${[...held, ...stray].join(' || ')}`);
    }
  }
  return differing;
}

/**
 * Polls until `divergence` finds nothing, for at most `timeoutMs` after `startedMs`; returns the
 * last snapshot (for the checks that follow) and the first differing keys when it gives up.
 */
export async function pollConverged(
  nodes: readonly InternalNode[],
  keys: readonly string[],
  replicasOf: (key: string) => readonly string[],
  options: { readonly startedMs: number; readonly timeoutMs: number; readonly intervalMs?: number; readonly comparison?: Comparison },
): Promise<{ readonly ok: boolean; readonly elapsedMs: number; readonly differing: readonly string[]; readonly snapshot: ReplicaSnapshot | undefined }> {
  let differing: string[] = [];
  let snapshot: ReplicaSnapshot | undefined;
  for (;;) {
    try {
      snapshot = await snapshotReplicas(nodes, keys);
      differing = divergence(snapshot, keys, replicasOf, options.comparison);
    } catch (error) {
      differing = [`fetch failed: ${String(error)}`];
    }
    const elapsedMs = Date.now() - options.startedMs;
    if (differing.length === 0) return { ok: true, elapsedMs, differing, snapshot };
    if (elapsedMs >= options.timeoutMs) return { ok: false, elapsedMs, differing: [...differing.slice(0, 10), `(${differing.length} keys differ)`], snapshot };
    await delay(options.intervalMs ?? 500);
  }
}
