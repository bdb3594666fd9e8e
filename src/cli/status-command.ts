/**
 * `kai status`: the members one node knows, up or down, with their part in the ring and their
 * share of it, what that means for R and W, and the node's own storage; then each member's own
 * account of its health (node-health.ts). `--json` prints the same as one line, for scripts.
 */
import { ringRole, ringMemberIds } from '../claimant';
import type { WireStorageHealth } from '../rpc/messages';
import type { ConnectionSecurity } from '../rpc/tcp-transport';
import { nodeInfoAt } from './membership-commands';
import { clusterHealth, quorumAvailability, type NodeHealth } from './node-health';
import { bytesText, formatTable } from './table';

export interface MemberStatusRow {
  readonly id: string;
  readonly address: string;
  /**
   * What the failure detector says; `seed` for an address given but never heard from; `failed`
   * for the node asked when its storage failed (it declared itself down).
   */
  readonly status: 'up' | 'down' | 'seed' | 'failed';
  /** Its part in the ring: owns buckets, joins (planned to own some), leaves, or none. */
  /** `waiting`: no ring founded yet, so no member owns anything. */
  readonly ring: 'owner' | 'joining' | 'leaving' | 'outside' | 'waiting';
  readonly zone: string;
  /** Fraction of buckets the member owns now. */
  readonly ownership: number;
  /** Fraction it owns once the ring change in progress is done. */
  readonly plannedOwnership: number;
  /** Copies the asked node holds for this member (it stood in while the member was down), not yet handed off. */
  readonly hintsPending: number;
  readonly hintBytesPending: number;
}

export interface ClusterStatus {
  readonly members: readonly MemberStatusRow[];
  /** The storage health of the node asked; undefined from a node that does not report it. */
  readonly storage: WireStorageHealth | undefined;
  readonly ringVersion: number;
  readonly changing: boolean;
  /** N, R and W, and how many buckets have fewer up replicas than R or W. */
  readonly quorum: {
    readonly n: number;
    readonly r: number;
    readonly w: number;
    readonly bucketsBelowR: number;
    readonly bucketsBelowW: number;
    readonly buckets: number;
  };
  /** The id of the node asked. */
  readonly asked: string;
  /** Each member's own account of its health, when asked for (node-health.ts). */
  readonly nodes?: readonly NodeHealth[];
}

function shares(owners: readonly string[] | null | undefined): Map<string, number> {
  const owned = new Map<string, number>();
  if (!owners) return owned;
  for (const id of owners) owned.set(id, (owned.get(id) ?? 0) + 1);
  for (const [id, count] of owned) owned.set(id, count / owners.length);
  return owned;
}

/**
 * Members as the node at `address` sees them, with their part in the ring and its effect on
 * quorums; with `health`, each member's own account of its health too.
 */
export async function clusterStatus(
  address: string,
  security?: ConnectionSecurity,
  options: { readonly health?: boolean } = {},
): Promise<ClusterStatus> {
  const info = await nodeInfoAt(address, security);
  const state = info.ring;
  const owned = shares(state?.owners);
  const planned = shares(state?.next ?? state?.owners);
  const view = {
    selfId: info.id,
    replicas: info.quorum.n,
    members: info.members.map((m) => ({ ...m, up: m.status === 'up', gone: m.status === 'leaving', vouched: !info.unvouched.includes(m.id) })),
  };
  const members: MemberStatusRow[] = info.members
    .filter((m) => m.status !== 'leaving' || (state !== undefined && ringMemberIds(state).includes(m.id)))
    .map((m) => {
      const hints = info.hints.get(m.id);
      return {
        id: m.id,
        address: m.address,
        status: m.status === 'up' ? 'up' : m.id === info.id && info.storage?.state === 'failed' ? 'failed' : 'down',
        ring: !info.ringFounded ? 'waiting' : state === undefined ? 'owner' : ringRole(state, view, m.id),
        zone: m.zone,
        ownership: owned.get(m.id) ?? 0,
        plannedOwnership: planned.get(m.id) ?? 0,
        hintsPending: hints?.count ?? 0,
        hintBytesPending: hints?.bytes ?? 0,
      };
    });
  for (const seed of info.seeds) {
    members.push({ id: seed, address: seed, status: 'seed', ring: 'outside', zone: '', ownership: 0, plannedOwnership: 0, hintsPending: 0, hintBytesPending: 0 });
  }
  const { n, r, w } = info.quorum;
  const { bucketsBelowR, bucketsBelowW } = quorumAvailability(info);
  return {
    members,
    storage: info.storage,
    ringVersion: state?.version ?? 0,
    changing: state?.next !== null && state?.next !== undefined,
    quorum: { n, r, w, bucketsBelowR, bucketsBelowW, buckets: info.buckets },
    asked: info.id,
    ...(options.health ? { nodes: await clusterHealth(info, security) } : {}),
  };
}

export function statusJson(status: ClusterStatus): string {
  return JSON.stringify(status);
}

export function statusTable(status: ClusterStatus): string {
  const header = ['ID', 'ADDRESS', 'STATUS', 'RING', 'ZONE', 'OWNERSHIP', 'HINTS HELD FOR IT'];
  const percent = (fraction: number): string => `${(fraction * 100).toFixed(1)}%`;
  const hints = (row: MemberStatusRow): string => (row.hintsPending === 0 ? '-' : `${row.hintsPending} (${row.hintBytesPending} bytes)`);
  const ownership = (row: MemberStatusRow): string =>
    row.ownership === row.plannedOwnership ? percent(row.ownership) : `${percent(row.ownership)} -> ${percent(row.plannedOwnership)}`;
  const rows = status.members.map((row) => [row.id, row.address, row.status, row.ring, row.zone === '' ? '-' : row.zone, ownership(row), hints(row)]);
  const { n, r, w, bucketsBelowR, bucketsBelowW, buckets } = status.quorum;
  const quorumLine =
    bucketsBelowR === 0 && bucketsBelowW === 0
      ? `N=${n} R=${r} W=${w}: every bucket has its R and W replicas up`
      : `N=${n} R=${r} W=${w}: ${bucketsBelowR} of ${buckets} buckets below R, ${bucketsBelowW} below W (sloppy quorum takes fallbacks for writes)`;
  const ringLine = `ring version ${status.ringVersion}${status.changing ? ', changing: see kai transfers' : ''}`;
  const storage = storageLine(status.storage);
  const health = status.nodes === undefined ? [] : ['', ...healthTable(status.nodes)];
  return [...formatTable(header, rows), '', ringLine, quorumLine, ...(storage === undefined ? [] : [storage]), ...health].join('\n');
}

/** Each node's own account: one row each, then a line for each node that refuses requests or was not heard. */
function healthTable(nodes: readonly NodeHealth[]): string[] {
  const header = ['NODE', 'REQUESTS', 'REPLICA OF', 'BELOW R', 'BELOW W', 'HINTS HELD', 'RECEIVING', 'STORAGE'];
  const rows = nodes.map((node): string[] => {
    if (node.unreachable !== undefined) return [node.id, 'unknown', '-', '-', '-', '-', '-', '-'];
    const quorum = node.quorum;
    const hints = node.hintsHeld ? `${node.hintsHeld} (${bytesText(node.hintBytesHeld ?? 0)})` : '-';
    const transfers = node.transfers;
    const receiving = transfers && transfers.bucketsToReceive > 0 ? `${transfers.bucketsReceived}/${transfers.bucketsToReceive} buckets` : '-';
    const storage = node.storage === undefined ? '-' : storageCell(node.storage);
    return [
      node.id,
      node.refusing === undefined ? 'served' : 'REFUSED',
      quorum === undefined ? '-' : `${quorum.buckets} buckets`,
      quorum === undefined ? '-' : String(quorum.bucketsBelowR),
      quorum === undefined ? '-' : String(quorum.bucketsBelowW),
      hints,
      receiving,
      storage,
    ];
  });
  const notes: string[] = [];
  for (const node of nodes) {
    if (node.unreachable !== undefined) notes.push(`${node.id}: not heard: ${node.unreachable}`);
    else if (node.refusing !== undefined) notes.push(`${node.id} refuses client requests: ${node.refusing}`);
  }
  return [...formatTable(header, rows), ...notes];
}

function storageCell(storage: WireStorageHealth): string {
  if (storage.state === 'failed') return 'FAILED';
  return storage.commitFailures === 0 ? 'ok' : `ok, ${storage.commitFailures} failed commits`;
}

/** The asked node's storage, in one line; undefined when the node does not report it. */
function storageLine(storage: WireStorageHealth | undefined): string | undefined {
  if (storage === undefined) return undefined;
  const failures =
    `${storage.commitFailures} failed commits (${storage.diskFullFailures} for a full disk), ` +
    `${storage.workerRestarts} commit worker restarts${storage.lastError === '' ? '' : `; last error: ${storage.lastError}`}`;
  if (storage.state === 'failed') return `storage FAILED on this node: ${storage.reason}; it refuses writes until restarted. ${failures}`;
  return `storage ok on this node: ${failures}`;
}
