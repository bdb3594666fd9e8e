/**
 * What a node says of itself and its cluster (`nodeInfo`), `kai check-node`, and the requests of
 * the ring commands: one request to a node's internal API each. An unreachable node is one line
 * on stderr and a non-zero exit, like every kai error.
 */
import { defaultSettings } from '../config/settings';
import type { RingState } from '../claimant';
import { ringStateFromWire } from '../claimant/wire';
import { fromWire } from '../membership';
import type { RingChange, RpcReply, TransferProgress, WireMember, WireStorageHealth } from '../rpc/messages';
import type { ConnectionSecurity } from '../rpc/tcp-transport';
import { ask, CommandError, type AskOptions } from './node-request';

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
  /** Why the node refuses client requests for now; undefined while it serves them. */
  readonly refusing: string | undefined;
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
    refusing: reply.refusing,
  };
}

/** The node's info, one request. */
export async function nodeInfoAt(address: string, security?: ConnectionSecurity, options?: AskOptions): Promise<NodeInfo> {
  return nodeInfoOf(address, await ask(address, { type: 'nodeInfo' }, security, options));
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
