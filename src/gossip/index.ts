/**
 * The gossip shell around the pure membership core (src/membership). Every interval it raises
 * this node's heartbeat, runs the failure detector, and swaps member lists with one random peer
 * over the Transport; both sides merge what they hear. It logs membership events, tells listeners
 * (the node rebuilds its ring), persists the member list so a restarted node rejoins on its own,
 * and answers the `gossip`, `nodeInfo` and `addSeed` requests of the internal API.
 *
 * Time, timers and randomness come from the Env and peers are reached through the Transport, so
 * whole clusters of shells run in one process under test/sim. As etcd's raft does, the list is
 * persisted before anything that depends on it is sent: `apply` writes it before returning.
 */
import type { Env, TimerHandle } from '../env';
import { KaiError, assert } from '../errors';
import type { Logger } from '../log';
import {
  addSeed,
  createMembership,
  declareSelfDown,
  detectFailures,
  forgetSeed,
  fromWire,
  leave,
  mergeGossip,
  pickDownPeer,
  pickGossipTarget,
  quietPeers,
  restoreMembership,
  seedAddressProblem,
  selfMember,
  tick,
  toWire,
  type FailureDetectorOptions,
  type MembershipEvent,
  type MembershipState,
  type MembershipUpdate,
  type SelfDescription,
} from '../membership';
import type { RingLayout, RpcReply, RpcRequest, WireMember } from '../rpc/messages';
import type { Transport } from '../rpc/transport';

/** Where the member list survives a restart: the node's SQLite file, or memory in tests. */
export interface MembershipPersistence {
  /** The list saved last, as saved and not yet validated; undefined when none was saved. */
  load(): unknown;
  /** Saves the list durably before returning; throws when it cannot. */
  save(members: readonly WireMember[]): void;
  /** The id this node had when it last started; undefined on a first start. */
  loadSelfId(): string | undefined;
  /** Saves the id this node runs under, durably. */
  saveSelfId(id: string): void;
}

export interface GossipOptions {
  readonly self: SelfDescription;
  readonly env: Env;
  readonly transport: Pick<Transport, 'request'>;
  readonly log: Logger;
  readonly persistence: MembershipPersistence;
  /** Internal addresses to join through at start (`--seed`). */
  readonly seeds?: readonly string[];
  readonly intervalMs?: number;
  /** By default a member is down after `downAfterRounds` intervals without news of it. */
  readonly failureDetector?: FailureDetectorOptions;
  /** How long one exchange waits for the peer's reply; one interval by default. */
  readonly exchangeTimeoutMs?: number;
  /** The node's ring layout, reported by `nodeInfo` so readers compute the same ownership. */
  readonly ringLayout?: RingLayout;
  /** State gossiped beside the member list (the ring's owners, src/claimant), merged after it. */
  readonly companion?: GossipCompanion;
}

/** State that travels with every exchange, both ways. */
export interface GossipCompanion {
  toWire(): unknown;
  /** Merges what a peer sent; validating it is the companion's part. */
  merge(value: unknown, from: string): void;
}

export type MembershipListener = (state: MembershipState, events: readonly MembershipEvent[]) => void;

export const gossipIntervalMsDefault = 1_000;
/** Missed rounds before a silent member is marked down: Dynamo-style tolerance of a slow round. */
export const downAfterRounds = 5;
/**
 * Exchanges one node has in flight at once. A peer that does not answer holds one for a whole
 * timeout; past this many, rounds still tick and detect but send nothing.
 */
export const exchangesInFlightMax = 4;
/**
 * Late rounds in a row that skip failure detection before one detects regardless: a node that
 * stays stalled still marks the silent down, only later.
 */
export const lateRoundsSkippedMax = 3;
/**
 * Exchanges a round starts with quiet peers (see `quietPeers`), each only while fewer than
 * `exchangesInFlightMax - 1` are in flight, so peers that do not answer never take every slot.
 */
export const quietPeerExchangesPerRoundMax = 2;

/** The persisted list, validated; an unusable one is reported and the node starts afresh. */
function savedMembers(persistence: MembershipPersistence, log: Logger): readonly WireMember[] | undefined {
  let saved: unknown;
  try {
    saved = persistence.load();
  } catch (error) {
    log.warn({ err: error }, 'saved member list cannot be read; starting with none');
    return undefined;
  }
  if (saved === undefined) return undefined;
  const checked = fromWire(saved);
  if (!checked.ok) {
    log.warn({ reason: checked.reason }, 'saved member list is invalid; starting with none');
    return undefined;
  }
  return checked.members;
}

/** What a saved list must keep: everything but heartbeats, which change every round. */
function persistedKey(members: readonly WireMember[]): string {
  return JSON.stringify(members.map((m) => [m.id, m.address, m.zone, m.weight, m.status, m.incarnation]));
}

export class Gossip {
  readonly selfId: string;
  private state: MembershipState;
  private readonly intervalMs: number;
  private readonly exchangeTimeoutMs: number;
  private readonly failureDetector: FailureDetectorOptions;
  private readonly listeners = new Set<MembershipListener>();
  private timer: TimerHandle | undefined;
  private exchangesInFlight = 0;
  /** When the last round ran, to tell a late round; undefined before the first. */
  private lastRoundAtMs: number | undefined;
  private lateRoundsSkipped = 0;
  private lastPersistedKey = '';
  private stopped = false;

  constructor(private readonly options: GossipOptions) {
    this.intervalMs = options.intervalMs ?? gossipIntervalMsDefault;
    assert(Number.isInteger(this.intervalMs) && this.intervalMs > 0, 'gossip interval is a positive integer');
    this.exchangeTimeoutMs = options.exchangeTimeoutMs ?? this.intervalMs;
    assert(this.exchangeTimeoutMs > 0, 'exchange timeout is positive');
    this.failureDetector = options.failureDetector ?? { downAfterMs: downAfterRounds * this.intervalMs };
    this.selfId = options.self.id;
    const nowMs = options.env.nowMs();
    const saved = savedMembers(options.persistence, options.log);
    const previousSelfId = options.persistence.loadSelfId();
    this.state = saved
      ? restoreMembership(options.self, saved, nowMs, previousSelfId)
      : createMembership(options.self, nowMs);
    if (saved) {
      options.log.info({ members: saved.length, incarnation: selfMember(this.state).incarnation }, 'member list restored');
    }
    if (previousSelfId !== undefined && previousSelfId !== this.selfId) {
      options.log.warn({ previous: previousSelfId, current: this.selfId }, 'node id changed; the previous id is leaving the ring');
    }
    options.persistence.saveSelfId(this.selfId);
    for (const seed of options.seeds ?? []) this.state = addSeed(this.state, seed, nowMs).state;
    // Saved at once, so the incarnation a restore raised is on disk before any peer hears it.
    this.persist();
  }

  /** This node's current view. */
  get membership(): MembershipState {
    return this.state;
  }

  /** The confirmed members, as gossiped and persisted. */
  get members(): WireMember[] {
    return toWire(this.state);
  }

  /** Calls `listener` after every change that produced events; returns the unsubscribe. */
  onChange(listener: MembershipListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    assert(this.timer === undefined && !this.stopped, 'gossip starts once');
    this.timer = this.options.env.every(this.intervalMs, () => this.round());
  }

  /** No more rounds; replies to exchanges still in flight are ignored. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /**
   * One round: heartbeat, failure detection, an exchange with a random peer, now and then one with
   * a down peer, and one with each peer that has been quiet for a while.
   */
  round(): void {
    if (this.stopped) return;
    const nowMs = this.options.env.nowMs();
    this.state = tick(this.state, nowMs);
    if (this.judgesPeersThisRound(nowMs)) this.apply(detectFailures(this.state, nowMs, this.failureDetector));
    if (this.exchangesInFlight >= exchangesInFlightMax) return;
    const { env } = this.options;
    const target = pickGossipTarget(this.state, env.random());
    if (target !== null) void this.exchange(target.address);
    const probed = pickDownPeer(this.state, env.random(), env.random());
    if (probed !== null && this.exchangesInFlight < exchangesInFlightMax) void this.exchange(probed.address);
    // A peer unheard of for half the detector's timeout is asked directly before it is judged.
    const quiet = quietPeers(this.state, nowMs, this.failureDetector.downAfterMs / 2).filter((member) => member.address !== target?.address);
    for (const member of quiet.slice(0, quietPeerExchangesPerRoundMax)) {
      if (this.exchangesInFlight >= exchangesInFlightMax - 1) break;
      void this.exchange(member.address);
    }
  }

  /**
   * Whether this round runs the failure detector. A round a whole interval late means this node
   * itself was stalled (a long pause, a starved CPU): what peers sent meanwhile still waits unread,
   * since a due timer runs before received I/O is handled, and judging them now would mark every
   * peer down for this node's own silence. Such a round leaves judging to the next, when that news
   * is in; at most `lateRoundsSkippedMax` in a row.
   */
  private judgesPeersThisRound(nowMs: number): boolean {
    const late = this.lastRoundAtMs !== undefined && nowMs - this.lastRoundAtMs >= 2 * this.intervalMs;
    this.lastRoundAtMs = nowMs;
    if (late && this.lateRoundsSkipped < lateRoundsSkippedMax) {
      this.lateRoundsSkipped++;
      return false;
    }
    this.lateRoundsSkipped = 0;
    return true;
  }

  /** Answers the membership requests of the internal API; other types are not this shell's. */
  handle(request: RpcRequest): RpcReply | Promise<RpcReply> {
    switch (request.type) {
      case 'gossip': {
        const mismatch = this.layoutMismatch(request.layout);
        if (mismatch) throw new KaiError('KAI_RING_LAYOUT_MISMATCH', mismatch);
        this.merge(request.members, 'gossip request', request.ring, undefined);
        return this.gossipMessage();
      }
      case 'nodeInfo':
        return this.nodeInfo();
      case 'addSeed':
        return this.addSeedAndExchange(request.address);
      default:
        throw new KaiError('KAI_INTERNAL', `gossip does not answer ${request.type}`);
    }
  }

  /**
   * Why a peer's ring layout cannot be gossiped with, or undefined when it matches (or either
   * side does not say: a node without a layout, as in tests, takes any).
   */
  private layoutMismatch(layout: RingLayout | undefined): string | undefined {
    const own = this.options.ringLayout;
    if (!own || !layout) return undefined;
    if (own.buckets === layout.buckets) return undefined;
    return `peer has ${layout.buckets} buckets, this node ${own.buckets}`;
  }

  nodeInfo(): RpcReply {
    const layout = this.options.ringLayout;
    return { type: 'nodeInfo', id: this.selfId, members: this.members, ...layout };
  }

  /**
   * `kai check-node`: learns `address`, then gossips with it at once, so the reply says whether
   * this node could reach it. An unreachable seed stays a gossip target until the failure
   * detector gives up on it.
   */
  private async addSeedAndExchange(address: string): Promise<RpcReply> {
    // The address comes from a peer: checked before this node dials it.
    const problem = seedAddressProblem(address);
    if (problem !== undefined) throw new KaiError('KAI_BAD_COMMAND_LINE', `seed ${address}: ${problem}`);
    if (address !== selfMember(this.state).address) {
      this.apply(addSeed(this.state, address, this.options.env.nowMs()));
      this.options.log.info({ seed: address }, 'seed added');
      await this.exchange(address);
    }
    return this.nodeInfo();
  }

  /** Announces that this node has left the cluster: final for its incarnation. */
  leaveCluster(): void {
    const nowMs = this.options.env.nowMs();
    this.state = leave(this.state, nowMs);
    this.persist();
    for (const listener of this.listeners) listener(this.state, [{ kind: 'leaving', id: this.selfId }]);
  }

  /**
   * Tells the cluster this node is down though it runs (its storage failed): coordinators route
   * around it from the next exchange on. Final until the node restarts.
   */
  declareSelfDown(): void {
    const before = this.state;
    this.state = declareSelfDown(this.state, this.options.env.nowMs());
    if (this.state === before) return;
    this.options.log.error({ incarnation: selfMember(this.state).incarnation }, 'this node declared itself down');
    // Saved so that a restart, which comes back up, takes an incarnation above this one.
    this.persist();
    for (const listener of this.listeners) listener(this.state, [{ kind: 'down', id: this.selfId }]);
  }

  /** Drops a seed never heard from; true when there was one at `address`. */
  forgetSeed(address: string): boolean {
    const next = forgetSeed(this.state, address);
    if (next === this.state) return false;
    this.state = next;
    this.options.log.info({ seed: address }, 'seed forgotten');
    for (const listener of this.listeners) listener(this.state, []);
    return true;
  }

  /** Sends this node's list to `address` and merges the list it answers with. */
  private async exchange(address: string): Promise<boolean> {
    this.exchangesInFlight++;
    try {
      const request = this.gossipMessage();
      const reply = await this.options.transport.request(address, request, this.exchangeTimeoutMs);
      // Stopped while waiting: the node may have closed its storage.
      if (this.stopped) return false;
      if (reply.type !== 'gossip') {
        this.options.log.warn({ peer: address, reply: reply.type === 'error' ? reply.code : reply.type }, 'gossip refused');
        return false;
      }
      const mismatch = this.layoutMismatch(reply.layout);
      if (mismatch) {
        this.options.log.error({ peer: address, mismatch }, 'gossip refused: the peer cuts its ring differently');
        return false;
      }
      // The reply comes from the address this node dialled: its entry there is the member's own word.
      this.merge(reply.members, address, reply.ring, address);
      return true;
    } catch (error) {
      this.options.log.debug({ peer: address, err: error }, 'gossip exchange failed');
      return false;
    } finally {
      this.exchangesInFlight--;
    }
  }

  private gossipMessage(): Extract<RpcRequest, { type: 'gossip' }> {
    const ring = this.options.companion?.toWire();
    return { type: 'gossip', members: this.members, layout: this.options.ringLayout, ...(ring === undefined ? {} : { ring }) };
  }

  private merge(remote: unknown, from: string, companion: unknown, heardFrom: string | undefined): void {
    if (this.stopped) return;
    const checked = fromWire(remote);
    if (!checked.ok) {
      this.options.log.warn({ from, reason: checked.reason }, 'gossip list rejected');
      return;
    }
    const update = mergeGossip(this.state, checked.members, this.options.env.nowMs(), this.failureDetector.downAfterMs, heardFrom);
    this.apply(update);
    if (companion !== undefined) this.options.companion?.merge(companion, from);
    this.hearNewcomers(update.events);
  }

  /**
   * A member just heard of second-hand is dialled at once, within the exchanges in flight, so it
   * vouches for itself (and may join the ring) without waiting for a round to draw it. Forged
   * entries thus cost at most exchangesInFlightMax exchanges at a time.
   */
  private hearNewcomers(events: readonly MembershipEvent[]): void {
    for (const event of events) {
      if (this.stopped || this.exchangesInFlight >= exchangesInFlightMax) return;
      if (event.kind !== 'joined') continue;
      const member = this.state.members.find((m) => m.id === event.id);
      if (member !== undefined && !member.vouched && member.status === 'up') void this.exchange(member.address);
    }
  }

  private apply(update: MembershipUpdate): void {
    if (this.stopped) return;
    this.state = update.state;
    if (update.events.length === 0) return;
    for (const event of update.events) this.logEvent(event);
    // A view ignored changes no member: listeners (the ring) are not woken for a stream of forgeries.
    if (update.events.every((event) => event.kind === 'implausible')) return;
    this.persist();
    for (const listener of this.listeners) listener(this.state, update.events);
  }

  private persist(): void {
    const members = this.members;
    const key = persistedKey(members);
    if (key === this.lastPersistedKey) return;
    try {
      this.options.persistence.save(members);
      this.lastPersistedKey = key;
    } catch (error) {
      // Gossip goes on: the list is saved again with the next change.
      this.options.log.error({ err: error }, 'member list cannot be saved');
    }
  }

  private logEvent(event: MembershipEvent): void {
    const { log } = this.options;
    switch (event.kind) {
      case 'down':
      case 'dropped':
        log.warn({ member: event.id }, `member ${event.kind}`);
        return;
      case 'implausible':
        log.warn({ member: event.id, incarnation: event.incarnation }, 'member view ignored: incarnation too far ahead');
        return;
      case 'refuted':
        log.info({ incarnation: event.incarnation }, 'rumour about this node refuted');
        return;
      default:
        log.info({ member: event.id }, `member ${event.kind}`);
    }
  }
}

/** The member list kept as one JSON note of the node's SQLite store. */
export function notePersistence(store: {
  readNote(name: string): string | undefined;
  writeNote(name: string, value: string): void;
}): MembershipPersistence {
  const name = 'members';
  const selfIdName = 'selfId';
  return {
    load: () => {
      const text = store.readNote(name);
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    },
    save: (members) => store.writeNote(name, JSON.stringify(members)),
    loadSelfId: () => store.readNote(selfIdName),
    saveSelfId: (id) => store.writeNote(selfIdName, id),
  };
}

/** Memory only, for nodes and tests that need no restart. */
export function memoryPersistence(): MembershipPersistence & {
  saved: readonly WireMember[] | undefined;
  selfId: string | undefined;
} {
  const persistence = {
    saved: undefined as readonly WireMember[] | undefined,
    selfId: undefined as string | undefined,
    load: () => persistence.saved,
    save: (members: readonly WireMember[]) => {
      persistence.saved = members.map((m) => ({ ...m }));
    },
    loadSelfId: () => persistence.selfId,
    saveSelfId: (id: string) => {
      persistence.selfId = id;
    },
  };
  return persistence;
}
