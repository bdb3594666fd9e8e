/**
 * `kai check-node`, `kai status` and the ring commands' requests: one request to a node's internal API each, and the answer
 * printed. An unreachable node is one line on stderr and a non-zero exit, like every kai error.
 */
import { ConfigError, checkNodeAddress } from '../config/fields';
import { defaultSettings } from '../config/settings';
import { realEnv } from '../env';
import { KaiError } from '../errors';
import { ringMemberIds, ringRole, type RingState } from '../claimant';
import { ringStateFromWire } from '../claimant/wire';
import { fromWire } from '../membership';
import { preferenceListUp, ringFromOwners } from '../ring';
import type { RingChange, RpcReply, RpcRequest, TransferProgress, WireMember, WireStorageHealth } from '../rpc/messages';
import { TcpTransport, type ConnectionSecurity } from '../rpc/tcp-transport';

/**
 * How long a command waits for the node. check-node's node first gossips with the other node,
 * which takes one exchange timeout (a gossip interval) at most.
 */
export const commandTimeoutMs = 10_000;

/** Replies carry member lists and the ring state, never values: the ring of 65536 buckets fits. */
const commandFrameBytesMax = 8 * 1024 * 1024;

/** An operating failure of a command: printed as `kai: <message>`, exit code 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export function parseNodeAddress(text: string, what: string): string {
  if (!checkNodeAddress(text)) throw new ConfigError(`${what}: must be host:port of a node's internal API, got ${JSON.stringify(text)}`);
  return text;
}

/** One request to `address`, and the transport closed after. */
async function ask(address: string, request: RpcRequest, security: ConnectionSecurity | undefined): Promise<RpcReply> {
  const transport = new TcpTransport({ host: '127.0.0.1', port: 0, env: realEnv, frameBytesMax: commandFrameBytesMax, ...security });
  try {
    const reply = await transport.request(address, request, commandTimeoutMs);
    if (reply.type === 'error') throw new CommandError(`${address} refused ${request.type}: ${reply.code}: ${reply.detail}`);
    return reply;
  } catch (error) {
    if (error instanceof KaiError && error.code === 'KAI_PEER_UNREACHABLE') {
      const detail = error.detail ?? error.message;
      // The transport's detail usually names the address already.
      throw new CommandError(`cannot reach ${address}: ${detail.startsWith(`${address}: `) ? detail.slice(address.length + 2) : detail}`);
    }
    throw error;
  } finally {
    await transport.close();
  }
}

export interface NodeInfo {
  readonly id: string;
  readonly members: readonly WireMember[];
  readonly buckets: number;
  /** Hints the node holds per target node, waiting for hinted handoff. */
  readonly hints: ReadonlyMap<string, { readonly count: number; readonly bytes: number }>;
  readonly ring: RingState | undefined;
  /** False while the node has neither founded a ring nor learned one (its first ring has no claimant). */
  readonly ringFounded: boolean;
  readonly transfers: TransferProgress | undefined;
  readonly seeds: readonly string[];
  /** Members the node has not heard from themselves: not joining the ring until it has. */
  readonly unvouched: readonly string[];
  readonly quorum: { readonly n: number; readonly r: number; readonly w: number };
  /** The node's storage health; undefined from a node of a version that does not report it. */
  readonly storage: WireStorageHealth | undefined;
}

export function nodeInfoOf(address: string, reply: RpcReply): NodeInfo {
  if (reply.type !== 'nodeInfo') throw new CommandError(`${address} answered ${reply.type}, not nodeInfo`);
  const checked = fromWire(reply.members);
  if (!checked.ok) throw new CommandError(`${address} sent an invalid member list: ${checked.reason}`);
  const buckets = reply.buckets ?? defaultSettings.buckets;
  // A node that has not founded or joined a ring yet sends its unfounded first ring (no claimant):
  // there is no ring to show until it has.
  const unfounded = typeof reply.ring === 'object' && reply.ring !== null && (reply.ring as { claimant?: unknown }).claimant === '';
  const ring = reply.ring === undefined || unfounded ? undefined : ringStateFromWire(reply.ring, buckets);
  if (ring !== undefined && !ring.ok) throw new CommandError(`${address} sent an invalid ring state: ${ring.reason}`);
  return {
    id: reply.id,
    members: checked.members,
    buckets,
    hints: new Map((reply.hints ?? []).map((hint) => [hint.target, { count: hint.count, bytes: hint.bytes }])),
    ring: ring?.state,
    ringFounded: !unfounded,
    transfers: reply.transfers,
    seeds: reply.seeds ?? [],
    unvouched: reply.unvouched ?? [],
    quorum: reply.quorum ?? { n: defaultSettings.n, r: defaultSettings.r, w: defaultSettings.w },
    storage: reply.storage,
  };
}

/** The node's info, one request. */
export async function nodeInfoAt(address: string, security?: ConnectionSecurity): Promise<NodeInfo> {
  return nodeInfoOf(address, await ask(address, { type: 'nodeInfo' }, security));
}

/** Asks the node at `address` for a ring change; answers with its info after. */
export async function askRingChange(address: string, change: RingChange, security?: ConnectionSecurity): Promise<NodeInfo> {
  return nodeInfoOf(address, await ask(address, { type: 'ringChange', change }, security));
}

/** Tells the node at `node` of a seed; answers with its info after. */
export async function addSeedAt(node: string, seed: string, security?: ConnectionSecurity): Promise<NodeInfo> {
  return nodeInfoOf(node, await ask(node, { type: 'addSeed', address: seed }, security));
}

/**
 * Tells the node at `first` about the node at `second`, and reports whether `first` reached it.
 * Throws CommandError when it did not: `first` keeps trying, but the operator should know.
 */
export async function checkNode(first: string, second: string, security?: ConnectionSecurity): Promise<string> {
  // The second node is passed on under the id and address it gives itself, not as typed here:
  // `localhost:11012` and `127.0.0.1:11012` are one node, and every member must name it alike.
  const secondInfo = await ask(second, { type: 'nodeInfo' }, security)
    .then((reply) => nodeInfoOf(second, reply))
    .catch(() => undefined);
  const secondAddress = secondInfo?.members.find((m) => m.id === secondInfo.id)?.address ?? second;
  const secondId = secondInfo?.id ?? second;
  const info = nodeInfoOf(first, await ask(first, { type: 'addSeed', address: secondAddress }, security));
  const known = info.members.find((m) => m.id === secondId || m.address === secondAddress);
  if (known === undefined) throw new CommandError(`${first} could not reach ${second} yet; it keeps trying`);
  return `${first} knows ${known.id} (${known.status}); ${info.members.length} members: ${info.members.map((m) => m.id).join(', ')}`;
}

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
}

function shares(owners: readonly string[] | null | undefined): Map<string, number> {
  const owned = new Map<string, number>();
  if (!owners) return owned;
  for (const id of owners) owned.set(id, (owned.get(id) ?? 0) + 1);
  for (const [id, count] of owned) owned.set(id, count / owners.length);
  return owned;
}

/** Members as the node at `address` sees them, with their part in the ring and its effect on quorums. */
export async function clusterStatus(address: string, security?: ConnectionSecurity): Promise<ClusterStatus> {
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
  const up = new Set(info.members.filter((m) => m.status === 'up').map((m) => m.id));
  let bucketsBelowR = 0;
  let bucketsBelowW = 0;
  const { n, r, w } = info.quorum;
  if (state !== undefined) {
    const ring = ringFromOwners(state.members, state.owners, { buckets: state.owners.length });
    const size = Math.min(n, ring.members.length);
    for (let bucket = 0; bucket < state.owners.length; bucket++) {
      const upReplicas = preferenceListUp(ring, bucket, size, (id) => up.has(id)).length;
      if (upReplicas < Math.min(r, size)) bucketsBelowR++;
      if (upReplicas < Math.min(w, size)) bucketsBelowW++;
    }
  }
  return {
    members,
    storage: info.storage,
    ringVersion: state?.version ?? 0,
    changing: state?.next !== null && state?.next !== undefined,
    quorum: { n, r, w, bucketsBelowR, bucketsBelowW, buckets: info.buckets },
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
  const lines = status.members.map((row) => [row.id, row.address, row.status, row.ring, row.zone === '' ? '-' : row.zone, ownership(row), hints(row)]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  const { n, r, w, bucketsBelowR, bucketsBelowW, buckets } = status.quorum;
  const quorumLine =
    bucketsBelowR === 0 && bucketsBelowW === 0
      ? `N=${n} R=${r} W=${w}: every bucket has its R and W replicas up`
      : `N=${n} R=${r} W=${w}: ${bucketsBelowR} of ${buckets} buckets below R, ${bucketsBelowW} below W (sloppy quorum takes fallbacks for writes)`;
  const ringLine = `ring version ${status.ringVersion}${status.changing ? ', changing: see kai transfers' : ''}`;
  const storage = storageLine(status.storage);
  return [format(header), ...lines.map(format), '', ringLine, quorumLine, ...(storage === undefined ? [] : [storage])].join('\n');
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
