/**
 * The ring changes an operator asks of a node (`kai leave`, `kai remove`, `kai replace`), checked
 * against what the node knows before they go into the ring state, where gossip spreads them and
 * the claimant plans them. Each refusal says what to do instead.
 */
import { isLeaving, requestsFull, requestsMax, ringMemberIds } from '../claimant';
import type { RingKeeper } from '../claimant/keeper';
import { KaiError } from '../errors';
import type { Gossip } from '../gossip';
import { findMember } from '../membership';
import type { RingChange, RpcReply, RpcRequest } from '../rpc/messages';

function refuse(detail: string): never {
  throw new KaiError('KAI_BAD_COMMAND_LINE', detail);
}

export function applyRingChange(gossip: Gossip, keeper: RingKeeper, change: RingChange): void {
  const membership = gossip.membership;
  const inRing = ringMemberIds(keeper.state);
  const subject = change.kind === 'leave' ? gossip.selfId : change.kind === 'remove' ? change.member : change.old;
  if (requestsFull(keeper.state, subject)) refuse(`the ring state holds ${requestsMax} requests already: no more members can be asked out`);
  switch (change.kind) {
    case 'leave': {
      if (!inRing.includes(gossip.selfId)) refuse(`${gossip.selfId} owns no buckets: it is not in the ring`);
      const others = inRing.filter((id) => id !== gossip.selfId && !isLeaving(keeper.state, keeper.view(), id));
      if (others.length === 0) refuse(`${gossip.selfId} is the last member of the ring: nothing could take its data`);
      keeper.requestLeave(gossip.selfId);
      return;
    }
    case 'remove': {
      const member = findMember(membership, change.member) ?? membership.members.find((m) => m.address === change.member);
      if (member === undefined) refuse(`${change.member} is not a member`);
      if (!member.confirmed) {
        gossip.forgetSeed(member.address);
        return;
      }
      if (member.id === gossip.selfId) refuse(`${member.id} cannot remove itself: run kai leave on it`);
      if (member.status === 'up') refuse(`${member.id} is up: run kai leave on it, or stop it first`);
      const others = inRing.filter((id) => id !== member.id && !isLeaving(keeper.state, keeper.view(), id));
      if (others.length === 0) refuse(`${member.id} is the last member of the ring`);
      keeper.requestLeave(member.id);
      return;
    }
    case 'replace': {
      if (!inRing.includes(change.old)) refuse(`${change.old} owns no buckets: nothing to replace`);
      if (inRing.includes(change.replacement)) refuse(`${change.replacement} is in the ring already`);
      keeper.requestReplace(change.old, change.replacement);
      return;
    }
  }
}

/** The internal API route: applies the change and answers with the node's info. */
export function ringChangeRoute(
  gossip: Gossip,
  keeper: RingKeeper,
  nodeInfo: () => RpcReply | Promise<RpcReply>,
): (request: Extract<RpcRequest, { type: 'ringChange' }>) => RpcReply | Promise<RpcReply> {
  return (request) => {
    applyRingChange(gossip, keeper, request.change);
    return nodeInfo();
  };
}
