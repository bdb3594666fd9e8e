/**
 * The internal API between kai nodes: one union of requests and one of replies, carried as
 * msgpack frames (src/rpc/frames.ts). New capabilities (hinted handoff, Merkle exchange, bucket
 * transfer) add members here. Values that do not survive msgpack as they are (bigints) travel
 * as decimal strings.
 */
import type { CounterTuple } from '../counter/codec';
import type { StorageMode } from '../protocol/command';

/** A version as it travels between nodes: the stored Version with plain fields only. */
export interface WireVersion {
  readonly clock: readonly (readonly [node: string, counter: number, timestampMs: number])[];
  readonly value: Buffer;
  readonly flags: number;
  readonly expiresAtMs: number;
  readonly tombstone: boolean;
  readonly writtenAtMs: number;
  /** A counter's state (src/counter/codec.ts); absent for any other value. */
  readonly counter?: CounterTuple;
  /** The meta protocol's marks (storage/record.ts versionMarks); absent when none is set. */
  readonly marks?: number;
}

/**
 * What identifies a version without its value: its clock and write time. Two versions with equal
 * clocks and write times are the same write (a clock entry names one record's writer, whose
 * counter moves on every write), so a read compares replicas by these (a digest read).
 */
export interface WireDigest {
  readonly clock: WireVersion['clock'];
  readonly writtenAtMs: number;
}

/** A write described as data, so a node outside a key's preference list can forward it. */
export type MutationSpec =
  | {
      readonly kind: 'store';
      readonly mode: StorageMode;
      readonly value: Buffer;
      readonly flags: number;
      readonly expiresAtMs: number;
      /** Decimal; "0" means unconditional. */
      readonly casUnique: string;
      /** The meta `I` flag (coordinator/mutations.ts StoreRequest). */
      readonly invalidate?: boolean;
      /** The meta `b` flag: the key is shown in base64. */
      readonly keyBase64?: boolean;
    }
  | {
      readonly kind: 'delete';
      readonly casUnique: string;
      /** The meta `md I`: mark the item stale instead, with this expiry if given. */
      readonly invalidate?: boolean;
      readonly expiresAtMs?: number;
    }
  | { readonly kind: 'touch'; readonly expiresAtMs: number }
  | {
      readonly kind: 'arith';
      readonly incr: boolean;
      readonly delta: string;
      readonly casUnique: string;
      readonly initial?: { readonly value: string; readonly expiresAtMs: number };
      /** The meta `T` flag: the expiry set on success. */
      readonly expiresAtMs?: number;
    }
  /**
   * A meta get that may change the item (coordinator/meta-mutations.ts): its `T`, `N` and `R`
   * flags in request order, each with the expiry (unix ms) it names.
   */
  | {
      readonly kind: 'fetch';
      readonly steps: readonly (readonly [flag: FetchStepFlag, expiresAtMs: number])[];
      /** The mg failed part way (an over-long opaque): it hands out no recache, as memcached's does not. */
      readonly withoutClaim?: boolean;
    };

/** mg's flags that act on the item: T touches, N vivifies a miss, R wins an expiring item's recache. */
export type FetchStepFlag = 'T' | 'N' | 'R';

/**
 * How a node cuts its ring (`--buckets`): nodes with different layouts would place keys
 * differently, so gossip refuses a peer whose layout differs from its own.
 */
export interface RingLayout {
  readonly buckets: number;
}

/** What a member says about itself and others in gossip. */
export interface WireMember {
  readonly id: string;
  /** host:port of the member's internal API. */
  readonly address: string;
  readonly zone: string;
  readonly weight: number;
  readonly status: 'up' | 'down' | 'leaving';
  /** Raised by the member itself to refute rumours of its failure. */
  readonly incarnation: number;
  /** Raised by the member itself every gossip round, so peers see it is alive. */
  readonly heartbeat: number;
}

/** A change of the ring an operator asks for. */
export type RingChange =
  | { readonly kind: 'leave' }
  | { readonly kind: 'remove'; readonly member: string }
  | { readonly kind: 'replace'; readonly old: string; readonly replacement: string };

/** What one node reports of the buckets it receives under the plan in progress. */
export interface TransferProgress {
  /** The plan's version, 0 when none runs. */
  readonly version: number;
  readonly bucketsToReceive: number;
  readonly bucketsReceived: number;
  readonly keysMoved: number;
  readonly bytesMoved: number;
  /** When this node started receiving under this plan, or 0. */
  readonly startedAtMs: number;
  readonly nowMs: number;
  /** Why receiving waits, when it does. */
  readonly waiting?: string;
}

/** One key's versions, as a batch of stores carries them. */
export interface WireItem {
  readonly key: Buffer;
  readonly bucket: number;
  readonly versions: readonly WireVersion[];
}

/** One key's versions in a batch of stores: with `hintFor` as a single replicaStore has it. */
export interface WireStoreItem extends WireItem {
  readonly hintFor?: string;
}

export type RpcRequest =
  | { readonly type: 'replicaFetch'; readonly key: Buffer }
  /**
   * `hintFor`: the receiver is a fallback standing in for that primary, and keeps a hint with the
   * copy so that hinted handoff delivers it once the primary is back.
   */
  | {
      readonly type: 'replicaStore';
      readonly key: Buffer;
      readonly bucket: number;
      readonly versions: readonly WireVersion[];
      readonly hintFor?: string;
    }
  /**
   * Versions of many keys merged at once (the stores of a turn, hinted handoff, anti-entropy, the reaper); answered with
   * `stored` once all are committed. With `ifHeld`, only into keys the receiver holds something
   * for: the reaper updates copies that exist and creates none.
   */
  | { readonly type: 'storeMany'; readonly items: readonly WireStoreItem[]; readonly ifHeld?: boolean }
  /** The versions of many keys; the reply may answer only the first ones, to stay within a frame. */
  | { readonly type: 'fetchMany'; readonly keys: readonly Buffer[] }
  /** The digests (WireDigest) of many keys' versions, without their values; the reply may answer the first ones. */
  | { readonly type: 'digestMany'; readonly keys: readonly Buffer[] }
  /** Anti-entropy: the root hash of each bucket's tree. */
  | { readonly type: 'treeRoots'; readonly buckets: readonly number[] }
  /** Anti-entropy: the hashes of some nodes of one level of a bucket's tree. */
  | { readonly type: 'treeNodes'; readonly bucket: number; readonly level: number; readonly indexes: readonly number[] }
  /** Anti-entropy: the keys of some segments (leaves) of a bucket, with their hashes. */
  | { readonly type: 'segmentKeys'; readonly bucket: number; readonly segments: readonly number[] }
  | { readonly type: 'coordinate'; readonly key: Buffer; readonly mutation: MutationSpec }
  /**
   * flush_all reaches every node: from `deadlineMs` (unix ms, the sender's clock) every version
   * written before it reads as absent, and the node's data is removed once it has come; 0 flushes
   * at once.
   */
  | { readonly type: 'flushAll'; readonly deadlineMs: number }
  | {
      readonly type: 'gossip';
      readonly members: readonly WireMember[];
      readonly layout?: RingLayout;
      /** The ring state (src/claimant/wire.ts), checked by its own rules. */
      readonly ring?: unknown;
    }
  | { readonly type: 'nodeInfo' }
  /** A page of one bucket's records, for a node that receives the bucket (src/transfer). */
  | { readonly type: 'bucketPage'; readonly bucket: number; readonly afterKey: Buffer; readonly limit: number }
  /** `kai leave`, `kai remove`, `kai replace`, asked of the node the command reaches. */
  | { readonly type: 'ringChange'; readonly change: RingChange }
  /**
   * `kai check-node`: the receiving node learns the internal address of another node and gossips
   * with it at once. Answered with a `nodeInfo` reply, after that first exchange.
   */
  | { readonly type: 'addSeed'; readonly address: string }
  /**
   * `kai locate`: where the key lives as the receiving node routes it, and what each of its
   * replicas holds. Answered with a `located` reply.
   */
  | { readonly type: 'locate'; readonly key: Buffer }
  /**
   * Is this connection alive? Answered by the receiving connection itself, at once and outside
   * its in-flight bound: a requester whose request met silence asks it before dropping the
   * connection (rpc/peer-connection.ts).
   */
  | { readonly type: 'probe' };

export type RpcReply =
  | { readonly type: 'versions'; readonly versions: readonly WireVersion[] }
  /** For the first `items.length` keys asked, in order, the versions held (empty when none). */
  | { readonly type: 'versionsMany'; readonly items: readonly (readonly WireVersion[])[] }
  | { readonly type: 'digestsMany'; readonly items: readonly (readonly WireDigest[])[] }
  | { readonly type: 'treeHashes'; readonly hashes: readonly number[] }
  /**
   * The keys and hashes of the segments listed in `segments`, which are those asked that fit in
   * one reply, in the order asked: the requester asks again for the others.
   */
  | { readonly type: 'segmentKeys'; readonly segments: readonly number[]; readonly keys: readonly Buffer[]; readonly hashes: readonly number[] }
  | { readonly type: 'stored' }
  | { readonly type: 'flushed' }
  | { readonly type: 'probed' }
  | {
      readonly type: 'coordinated';
      /** The mutation's result as the coordinating node's dispatcher needs it, msgpack-safe. */
      readonly result: unknown;
      readonly versions: readonly WireVersion[];
      readonly written: WireVersion | null;
      /** The replicas that acknowledged the write, the coordinating one first. */
      readonly acknowledgedBy?: readonly string[];
    }
  | { readonly type: 'gossip'; readonly members: readonly WireMember[]; readonly layout?: RingLayout; readonly ring?: unknown }
  | { readonly type: 'bucketPage'; readonly items: readonly WireItem[]; readonly more: boolean }
  | {
      readonly type: 'nodeInfo';
      readonly id: string;
      readonly members: readonly WireMember[];
      /** The node's ring layout, so a reader of the member list computes the same ownership. */
      readonly buckets?: number;
      /** The node's ring state (src/claimant/wire.ts). */
      readonly ring?: unknown;
      /** Seeds the node was given and has not heard from. */
      readonly seeds?: readonly string[];
      /** Members the node has not heard from themselves, which the ring does not take (membership Member.vouched). */
      readonly unvouched?: readonly string[];
      /** N, R and W as the node is configured. */
      readonly quorum?: { readonly n: number; readonly r: number; readonly w: number };
      /** The node's transfers: what it receives under the plan in progress. */
      readonly transfers?: TransferProgress;
      /** Hints the node holds, per target node, waiting for hinted handoff. */
      readonly hints?: readonly { readonly target: string; readonly count: number; readonly bytes: number }[];
      /** Whether the node's storage still commits, and the failures it met (src/storage/health.ts). */
      readonly storage?: WireStorageHealth;
      /** Why the node refuses client requests for now (joining, waiting for a seed); absent while it serves them. */
      readonly refusing?: string;
    }
  | ({ readonly type: 'located' } & WireLocation)
  /** The request failed on the peer; `code` is a code of src/errors.ts. */
  | { readonly type: 'error'; readonly code: string; readonly detail: string };

/** Where a key lives as a node routes requests for it (`kai locate`). */
export interface WireLocation {
  readonly bucket: number;
  /** The ring's bucket count. */
  readonly buckets: number;
  /** N, R and W as the node applies them: capped at the ring's size. */
  readonly quorum: { readonly n: number; readonly r: number; readonly w: number };
  /**
   * The preference lists requests for the key follow: the ring's, and while the key's bucket
   * moves, the next ring's too (reads use the one marked `reads`, writes both).
   */
  readonly lists: readonly WireLocatedList[];
  /** What each replica of every list holds for the key, or why it was not asked. */
  readonly replicas: readonly WireLocatedReplica[];
  /** Why the node refuses client requests for now; absent while it serves them. */
  readonly refusing?: string;
}

/** One preference list of a located key, as `annotatedPreferenceList` gives it (src/ring). */
export interface WireLocatedList {
  readonly ring: 'current' | 'next';
  readonly reads: boolean;
  /** The bucket's first N members, up or down: the key's home replicas. */
  readonly primaries: readonly string[];
  /** Where requests go now: each primary that is up, and for each one down the fallback standing in for it. */
  readonly targets: readonly { readonly node: string; readonly standsInFor?: string }[];
}

/** A version as `kai locate` shows it: what identifies it and what it holds, without the value. */
export interface WireVersionSummary {
  readonly clock: WireVersion['clock'];
  readonly writtenAtMs: number;
  readonly expiresAtMs: number;
  readonly tombstone: boolean;
  readonly flags: number;
  readonly valueBytes: number;
}

/** What one replica holds for a located key: its versions, or why they are not known. */
export interface WireLocatedReplica {
  readonly node: string;
  readonly up: boolean;
  readonly versions?: readonly WireVersionSummary[];
  /** Why the replica was not asked (down) or did not answer. */
  readonly error?: string;
}

/** A node's storage health as `nodeInfo` carries it; '' for a reason or error there is none of. */
export interface WireStorageHealth {
  readonly state: 'ok' | 'failed';
  readonly reason: string;
  readonly commitFailures: number;
  readonly operationsFailed: number;
  readonly diskFullFailures: number;
  readonly workerRestarts: number;
  readonly lastError: string;
}

export type RpcRequestType = RpcRequest['type'];
