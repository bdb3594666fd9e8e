/**
 * `kai check-node` and `kai status`: one request to a node's internal API each, and the answer
 * printed. An unreachable node is one line on stderr and a non-zero exit, like every kai error.
 */
import { ConfigError, checkNodeAddress } from '../config/fields';
import { defaultSettings } from '../config/settings';
import { realEnv } from '../env';
import { KaiError } from '../errors';
import { fromWire } from '../membership';
import { buildRing, ownership } from '../ring';
import { frameHeadroomBytes } from '../rpc/frames';
import type { RpcReply, RpcRequest, WireMember } from '../rpc/messages';
import { TcpTransport } from '../rpc/tcp-transport';

/**
 * How long a command waits for the node. check-node's node first gossips with the other node,
 * which takes one exchange timeout (a gossip interval) at most.
 */
export const commandTimeoutMs = 10_000;

/** Replies carry member lists only, never values: the headroom of a frame is room enough. */
const commandFrameBytesMax = frameHeadroomBytes;

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
async function ask(address: string, request: RpcRequest): Promise<RpcReply> {
  const transport = new TcpTransport({ host: '127.0.0.1', port: 0, env: realEnv, frameBytesMax: commandFrameBytesMax });
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

interface NodeInfo {
  readonly id: string;
  readonly members: readonly WireMember[];
  readonly buckets: number;
  readonly vnodes: number;
  /** Hints the node holds per target node, waiting for hinted handoff. */
  readonly hints: ReadonlyMap<string, { readonly count: number; readonly bytes: number }>;
}

function nodeInfoOf(address: string, reply: RpcReply): NodeInfo {
  if (reply.type !== 'nodeInfo') throw new CommandError(`${address} answered ${reply.type}, not nodeInfo`);
  const checked = fromWire(reply.members);
  if (!checked.ok) throw new CommandError(`${address} sent an invalid member list: ${checked.reason}`);
  return {
    id: reply.id,
    members: checked.members,
    buckets: reply.buckets ?? defaultSettings.buckets,
    vnodes: reply.vnodes ?? defaultSettings.vnodes,
    hints: new Map((reply.hints ?? []).map((hint) => [hint.target, { count: hint.count, bytes: hint.bytes }])),
  };
}

/**
 * Tells the node at `first` about the node at `second`, and reports whether `first` reached it.
 * Throws CommandError when it did not: `first` keeps trying, but the operator should know.
 */
export async function checkNode(first: string, second: string): Promise<string> {
  // The second node is passed on under the id and address it gives itself, not as typed here:
  // `localhost:11012` and `127.0.0.1:11012` are one node, and every member must name it alike.
  const secondInfo = await ask(second, { type: 'nodeInfo' })
    .then((reply) => nodeInfoOf(second, reply))
    .catch(() => undefined);
  const secondAddress = secondInfo?.members.find((m) => m.id === secondInfo.id)?.address ?? second;
  const secondId = secondInfo?.id ?? second;
  const info = nodeInfoOf(first, await ask(first, { type: 'addSeed', address: secondAddress }));
  const known = info.members.find((m) => m.id === secondId || m.address === secondAddress);
  if (known === undefined) throw new CommandError(`${first} could not reach ${second} yet; it keeps trying`);
  return `${first} knows ${known.id} (${known.status}); ${info.members.length} members: ${info.members.map((m) => m.id).join(', ')}`;
}

export interface MemberStatusRow {
  readonly id: string;
  readonly address: string;
  readonly status: 'up' | 'down';
  readonly zone: string;
  /** Fraction of buckets the member is first replica of, on the ring built from these members. */
  readonly ownership: number;
  /** Copies the asked node holds for this member (it stood in while the member was down), not yet handed off. */
  readonly hintsPending: number;
  readonly hintBytesPending: number;
}

/** Members as the node at `address` sees them, with ownership from the ring they form. */
export async function clusterStatus(address: string): Promise<MemberStatusRow[]> {
  const info = nodeInfoOf(address, await ask(address, { type: 'nodeInfo' }));
  // The same members own positions as on the node itself: all but those leaving.
  const owners = info.members.filter((m) => m.status !== 'leaving');
  const ringConfig = { buckets: info.buckets, vnodesPerNode: info.vnodes };
  const ringMembers = owners.map((m) => ({ id: m.id, weight: m.weight, zone: m.zone }));
  const owned = owners.length === 0 ? new Map<string, number>() : ownership(buildRing(ringMembers, ringConfig));
  // A member that left (the old id of a node restarted under a new one) is no longer a member.
  return owners.map((m) => {
    const { id, address, zone } = m;
    const hints = info.hints.get(id);
    return {
      id,
      address,
      status: m.status === 'up' ? 'up' : 'down',
      zone,
      ownership: owned.get(id) ?? 0,
      hintsPending: hints?.count ?? 0,
      hintBytesPending: hints?.bytes ?? 0,
    };
  });
}

export function statusJson(rows: readonly MemberStatusRow[]): string {
  return JSON.stringify({ members: rows });
}

export function statusTable(rows: readonly MemberStatusRow[]): string {
  const header = ['ID', 'ADDRESS', 'STATUS', 'ZONE', 'OWNERSHIP', 'HINTS HELD FOR IT'];
  const percent = (fraction: number): string => `${(fraction * 100).toFixed(1)}%`;
  const hints = (row: MemberStatusRow): string => (row.hintsPending === 0 ? '-' : `${row.hintsPending} (${row.hintBytesPending} bytes)`);
  const lines = rows.map((row) => [row.id, row.address, row.status, row.zone === '' ? '-' : row.zone, percent(row.ownership), hints(row)]);
  const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => line[column].length)));
  const format = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  return [format(header), ...lines.map(format)].join('\n');
}
