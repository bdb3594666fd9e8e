/**
 * A tiny heartbeat gossip, built on nothing but Env and Transport, to exercise the simulation
 * toolkit (it is not kai's membership). Every round a node raises its heartbeat and swaps its
 * view with one random known peer; a peer is seen up while its (incarnation, heartbeat) rose
 * within `suspectAfterMs` of the local clock. A restarted node takes its start time as its
 * incarnation, so its fresh heartbeats outrank the old ones peers remember.
 */
import type { Env, TimerHandle } from '../../src/env';
import { KaiError } from '../../src/errors';
import type { RpcReply, RpcRequest, WireMember } from '../../src/rpc/messages';
import type { Transport } from '../../src/rpc/transport';

export const gossipIntervalMs = 100;
export const gossipTimeoutMs = 300;
export const suspectAfterMs = 1_000;

interface Heard {
  readonly member: WireMember;
  readonly heardAtMs: number;
}

function isNewer(candidate: WireMember, known: WireMember | undefined): boolean {
  if (!known) return true;
  if (candidate.incarnation !== known.incarnation) return candidate.incarnation > known.incarnation;
  return candidate.heartbeat > known.heartbeat;
}

export class PingGossipNode {
  private readonly heard = new Map<string, Heard>();
  private readonly incarnation: number;
  private heartbeat = 0;
  private timer: TimerHandle | undefined;

  constructor(
    readonly address: string,
    private readonly env: Env,
    private readonly transport: Transport,
    private readonly seedAddresses: readonly string[],
  ) {
    this.incarnation = Math.floor(env.nowMs());
  }

  async start(): Promise<void> {
    await this.transport.serve((request) => this.answer(request));
    this.timer = this.env.every(gossipIntervalMs, () => void this.round());
  }

  stop(): void {
    this.timer?.cancel();
  }

  /** Whether this node currently believes `address` is alive. */
  seesUp(address: string): boolean {
    const heard = this.heard.get(address);
    return heard !== undefined && this.env.nowMs() - heard.heardAtMs < suspectAfterMs;
  }

  private self(): WireMember {
    const { address, incarnation, heartbeat } = this;
    return { id: address, address, zone: 'z', weight: 1, status: 'up', incarnation, heartbeat };
  }

  private view(): WireMember[] {
    return [this.self(), ...[...this.heard.values()].map((heard) => heard.member)];
  }

  private merge(members: readonly WireMember[]): void {
    for (const member of members) {
      if (member.id === this.address || !isNewer(member, this.heard.get(member.id)?.member)) continue;
      this.heard.set(member.id, { member, heardAtMs: this.env.nowMs() });
    }
  }

  private answer(request: RpcRequest): RpcReply {
    if (request.type !== 'gossip') throw new KaiError('KAI_INTERNAL', `ping gossip does not answer ${request.type}`);
    this.merge(request.members);
    return { type: 'gossip', members: this.view() };
  }

  private async round(): Promise<void> {
    this.heartbeat++;
    const peers = [...new Set([...this.seedAddresses, ...this.heard.keys()])].filter((peer) => peer !== this.address);
    if (peers.length === 0) return;
    const peer = peers[Math.floor(this.env.random() * peers.length)];
    try {
      const reply = await this.transport.request(peer, { type: 'gossip', members: this.view() }, gossipTimeoutMs);
      if (reply.type === 'gossip') this.merge(reply.members);
    } catch (error) {
      // An unreachable peer is what gossip expects now and then; anything else is a bug.
      if (!(error instanceof KaiError && error.code === 'KAI_PEER_UNREACHABLE')) throw error;
    }
  }
}
