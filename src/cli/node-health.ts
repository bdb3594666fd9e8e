/**
 * Each node's health as it reports it, for `kai status`: whether it serves client requests or
 * refuses them (and why), how many of the buckets it is a replica of can meet R and W with the
 * members it sees up, the hints it holds for others, the transfers it receives and the state of
 * its storage. One node's view of the cluster can say a member is up while that member refuses
 * every request; asking each member for its own account shows it.
 */
import { preferenceList, preferenceListUp, ringFromOwners } from '../ring';
import type { TransferProgress, WireStorageHealth } from '../rpc/messages';
import type { ConnectionSecurity } from '../rpc/tcp-transport';
import { nodeInfoAt, type NodeInfo } from './membership-commands';

/**
 * How long each member has to answer. Members are asked at once; one cut off from this machine
 * costs this much, not a command timeout per member.
 */
export const memberTimeoutMs = 3_000;

export interface QuorumAvailability {
  /** Buckets counted: every bucket, or those the node is a replica of. */
  readonly buckets: number;
  /** Of those, buckets with fewer replicas up (fallbacks included) than R; likewise W. */
  readonly bucketsBelowR: number;
  readonly bucketsBelowW: number;
}

/**
 * How many buckets can meet R and W as the node that sent `info` sees its members: of every
 * bucket, or of those `replicaId` is a primary replica of. Pure.
 */
export function quorumAvailability(info: NodeInfo, replicaId?: string): QuorumAvailability {
  const state = info.ring;
  if (state === undefined) return { buckets: replicaId === undefined ? info.buckets : 0, bucketsBelowR: 0, bucketsBelowW: 0 };
  const up = new Set(info.members.filter((member) => member.status === 'up').map((member) => member.id));
  const ring = ringFromOwners(state.members, state.owners, { buckets: state.owners.length });
  const { n, r, w } = info.quorum;
  const size = Math.min(n, ring.members.length);
  let buckets = 0;
  let bucketsBelowR = 0;
  let bucketsBelowW = 0;
  for (let bucket = 0; bucket < state.owners.length; bucket++) {
    if (replicaId !== undefined && !preferenceList(ring, bucket, size).includes(replicaId)) continue;
    buckets++;
    const upReplicas = preferenceListUp(ring, bucket, size, (id) => up.has(id)).length;
    if (upReplicas < Math.min(r, size)) bucketsBelowR++;
    if (upReplicas < Math.min(w, size)) bucketsBelowW++;
  }
  return { buckets, bucketsBelowR, bucketsBelowW };
}

/** A member's own account, or why there is none. */
export type MemberAnswer = { readonly info: NodeInfo } | { readonly unreachable: string };

/** Members asked at once: a cluster of hundreds is asked in waves, not with hundreds of connections. */
export const membersAskedAtOnceMax = 32;

/**
 * Each of `memberIds` asked for its info at the address `info`'s node knows it by, at most
 * membersAskedAtOnceMax at a time; the node that sent `info` is not asked again.
 */
export async function askMembers(
  info: NodeInfo,
  memberIds: readonly string[],
  security: ConnectionSecurity | undefined,
): Promise<Map<string, MemberAnswer>> {
  const addressOf = new Map(info.members.map((member) => [member.id, member.address]));
  const answers = new Map<string, MemberAnswer>();
  const askOne = async (id: string): Promise<MemberAnswer> => {
    if (id === info.id) return { info };
    try {
      return { info: await nodeInfoAt(addressOf.get(id) ?? id, security, { timeoutMs: memberTimeoutMs, probe: false }) };
    } catch (error) {
      return { unreachable: error instanceof Error ? error.message : String(error) };
    }
  };
  let next = 0;
  const asker = async (): Promise<void> => {
    while (next < memberIds.length) {
      const id = memberIds[next++];
      answers.set(id, await askOne(id));
    }
  };
  await Promise.all(Array.from({ length: Math.min(membersAskedAtOnceMax, memberIds.length) }, asker));
  return answers;
}

export interface NodeHealth {
  readonly id: string;
  /** Why the node was not heard: down in the view of the node asked, or not answering now. */
  readonly unreachable?: string;
  /** Why it refuses client requests; absent while it serves them. */
  readonly refusing?: string;
  /** The buckets it is a replica of, and of those how many cannot meet R or W as it sees the members. */
  readonly quorum?: QuorumAvailability;
  /** Copies it holds for members that were down, waiting for hinted handoff. */
  readonly hintsHeld?: number;
  readonly hintBytesHeld?: number;
  /** The buckets it receives under a ring change in progress. */
  readonly transfers?: TransferProgress;
  readonly storage?: WireStorageHealth;
}

/** A node's health from its own info. Pure. */
export function healthOf(info: NodeInfo): NodeHealth {
  let hintsHeld = 0;
  let hintBytesHeld = 0;
  for (const hint of info.hints.values()) {
    hintsHeld += hint.count;
    hintBytesHeld += hint.bytes;
  }
  return {
    id: info.id,
    ...(info.refusing === undefined ? {} : { refusing: info.refusing }),
    quorum: quorumAvailability(info, info.id),
    hintsHeld,
    hintBytesHeld,
    ...(info.transfers === undefined ? {} : { transfers: info.transfers }),
    ...(info.storage === undefined ? {} : { storage: info.storage }),
  };
}

/**
 * Every member's health, asked of each member the node that sent `info` sees up (itself
 * included); a member it sees down is reported so without being asked.
 */
export async function clusterHealth(info: NodeInfo, security: ConnectionSecurity | undefined): Promise<NodeHealth[]> {
  const upIds = info.members.filter((member) => member.status === 'up' || member.id === info.id).map((member) => member.id);
  const answers = await askMembers(info, upIds, security);
  // A member whose status is `leaving` has left the cluster: there is nothing to ask it.
  return info.members.filter((member) => member.status !== 'leaving').map((member): NodeHealth => {
    const answer = answers.get(member.id);
    if (answer === undefined) return { id: member.id, unreachable: `${member.status} in the view of ${info.id}; not asked` };
    return 'info' in answer ? healthOf(answer.info) : { id: member.id, unreachable: answer.unreachable };
  });
}
