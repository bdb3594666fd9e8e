/**
 * What each replica holds, read over kai's internal API from the test process, and where each key
 * belongs. `replicaFetch` answers a node's own versions of a key (its store, nothing gathered from
 * peers), so a test can see whether the replicas of a key converged without any client read,
 * which would itself repair them. The ring is pure: built from the members a node reports
 * (`nodeInfo`, with weights, zones and the ring layout), it gives each key's primaries exactly as
 * the nodes compute them. Plain Node.
 */
import { realEnv } from '../../src/env';
import { ringStateFromWire } from '../../src/claimant/wire';
import { ringFromOwners, bucketOfKey, preferenceList, type Ring } from '../../src/ring';
import { frameBytesMaxFor } from '../../src/rpc/frames';
import type { RpcReply, RpcRequest, WireVersion } from '../../src/rpc/messages';
import { TcpTransport } from '../../src/rpc/tcp-transport';

/** Values in these tests are small; a few siblings of 1 MiB would still fit. */
const inspectFrameBytesMax = frameBytesMaxFor(1024 * 1024, 26);
/** One internal API request; a node answers a fetch from memory at once. */
export const inspectTimeoutMsDefault = 5_000;
/** Fetches in flight to one node at once; the transport refuses past 1024. */
const fetchesInFlightMax = 200;

/** A node's internal API address (its id). */
export interface InternalNode {
  readonly id: string;
}

/** Sends one request to each address on a transport of its own, closed after: no backoff carried over. */
async function withTransport<T>(use: (transport: TcpTransport) => Promise<T>): Promise<T> {
  const transport = new TcpTransport({ host: '0.0.0.0', port: 0, env: realEnv, frameBytesMax: inspectFrameBytesMax });
  try {
    return await use(transport);
  } finally {
    await transport.close();
  }
}

async function ask(transport: TcpTransport, address: string, request: RpcRequest, timeoutMs: number): Promise<RpcReply> {
  const reply = await transport.request(address, request, timeoutMs);
  if (reply.type === 'error') throw new Error(`${address} refused ${request.type}: ${reply.code}: ${reply.detail}`);
  return reply;
}

/**
 * Each key's versions as `node` itself holds them (`replicaFetch`, one request per key, at most
 * fetchesInFlightMax at once). Rejects if any fetch fails: the caller polls again.
 */
export function replicaVersions(node: InternalNode, keys: readonly string[], timeoutMs = inspectTimeoutMsDefault): Promise<Map<string, WireVersion[]>> {
  return withTransport(async (transport) => {
    const held = new Map<string, WireVersion[]>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keys[next++];
        const reply = await ask(transport, node.id, { type: 'replicaFetch', key: Buffer.from(key, 'latin1') }, timeoutMs);
        if (reply.type !== 'versions') throw new Error(`${node.id} answered replicaFetch with ${reply.type}`);
        held.set(key, [...reply.versions]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(fetchesInFlightMax, keys.length) }, worker));
    return held;
  });
}

/** A version in one comparable line: clock entries sorted by node, then every field. */
export function versionText(version: WireVersion): string {
  const clock = [...version.clock].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([node, counter, at]) => `${node}=${counter}@${at}`);
  const body = version.tombstone ? 'tombstone' : `value=${version.value.toString('latin1')}`;
  return `[${clock.join(',')}] ${body} flags=${version.flags} expires=${version.expiresAtMs} written=${version.writtenAtMs}`;
}

/** A key's versions as one comparable text, in a canonical order. */
export function versionsText(versions: readonly WireVersion[]): string {
  return versions.map(versionText).sort().join(' | ');
}

/** The values of the versions a client could read at `nowMs`: neither tombstones nor expired. */
export function liveValues(versions: readonly WireVersion[], nowMs: number): string[] {
  return versions.filter((v) => !v.tombstone && (v.expiresAtMs === 0 || v.expiresAtMs > nowMs)).map((v) => v.value.toString('latin1'));
}

/** Where keys live: the ring the cluster's members form, and N. */
export interface Placement {
  readonly ring: Ring;
  readonly n: number;
  /** The key's N primaries, in preference order. */
  primariesOf(key: string): readonly string[];
}

/**
 * The ring as `node` knows it (`nodeInfo`: its ring state). Throws unless its owners are exactly
 * `expectedIds` and no ring change is in progress, so a placement is never computed from a
 * partial view.
 */
export function placementFrom(node: InternalNode, expectedIds: readonly string[], n: number, timeoutMs = inspectTimeoutMsDefault): Promise<Placement> {
  return withTransport(async (transport) => {
    const reply = await ask(transport, node.id, { type: 'nodeInfo' }, timeoutMs);
    if (reply.type !== 'nodeInfo') throw new Error(`${node.id} answered nodeInfo with ${reply.type}`);
    const checked = ringStateFromWire(reply.ring, reply.buckets ?? 1024);
    if (!checked.ok) throw new Error(`${node.id} sent no valid ring state: ${checked.reason}`);
    const state = checked.state;
    const ids = [...new Set(state.owners)].sort();
    if (state.next !== null || JSON.stringify(ids) !== JSON.stringify([...expectedIds].sort())) {
      throw new Error(`${node.id}'s ring has owners ${ids.join(', ')}${state.next === null ? '' : ' and a change in progress'}, not ${[...expectedIds].sort().join(', ')}`);
    }
    const ring = ringFromOwners(state.members, state.owners, { buckets: state.owners.length });
    return {
      ring,
      n,
      primariesOf: (key: string) => preferenceList(ring, bucketOfKey(Buffer.from(key, 'latin1'), ring.config.buckets), n),
    };
  });
}
