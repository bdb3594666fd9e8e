/**
 * The shell around the claimant core: holds this node's ring state, merges what gossip brings,
 * runs the claimant's step, saves the state before anything that depends on it is sent, and
 * answers what the rest of the node asks of the ring: the current ring, the plan in progress and
 * which moving buckets have switched.
 */
import type { Env, TimerHandle } from '../env';
import type { Logger } from '../log';
import { ringMembers, type MembershipState } from '../membership';
import { ringFromOwners, type Ring } from '../ring';
import {
  claimantStep,
  hasSwitched,
  initialRingState,
  markReceived,
  mergeRingStates,
  notReady,
  observe,
  cancelLeave,
  requestLeave,
  requestReplace,
  sameRingState,
  seenByAllUp,
  transitionOf,
  type BucketMove,
  type ClusterView,
  type RingState,
  type Transition,
} from './index';
import { ringStateFromWire, ringStateToWire, type WireRingState } from './wire';

/** Where the ring state survives a restart. */
export interface RingStatePersistence {
  load(): unknown;
  save(state: WireRingState): void;
}

export interface RingKeeperOptions {
  readonly selfId: string;
  readonly env: Env;
  readonly log: Logger;
  readonly buckets: number;
  /** N as configured: the plan's moves are computed for it. */
  readonly replicas: number;
  /** The node's current membership view. */
  readonly membership: () => MembershipState;
  readonly persistence: RingStatePersistence;
  /** How often the claimant's step runs besides after each merge. */
  readonly intervalMs: number;
  /** Whether this node waits for no seed; a node alone founds its own ring only then. */
  readonly seedsHeard?: () => boolean;
}

/** Marks within one version are saved at most this often. */
export const ringSaveIntervalMs = 500;

export type RingListener = (state: RingState, previous: RingState) => void;

/** The ring state kept as one JSON note of the node's store. */
export function ringNotePersistence(store: { readNote(name: string): string | undefined; writeNote(name: string, value: string): void }): RingStatePersistence {
  return {
    load: () => {
      const text = store.readNote('ring');
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    },
    save: (state) => store.writeNote('ring', JSON.stringify(state)),
  };
}

export class RingKeeper {
  private current: RingState;
  private ringCache: { state: RingState; ring: Ring; transition: Transition | undefined } | undefined;
  private readonly listeners = new Set<RingListener>();
  private timer: TimerHandle | undefined;
  private saveTimer: TimerHandle | undefined;
  private stepTimer: TimerHandle | undefined;
  private started = false;
  /** A `kai join` was asked of this node: a leave the cluster still holds for it is cancelled. */
  private joinPending = false;
  /** When this node first saw every up member holding the current version, by version. */
  private settledSince: { version: number; claimant: string; atMs: number } | undefined;

  constructor(private readonly options: RingKeeperOptions) {
    const saved = this.loadSaved();
    const membership = options.membership();
    this.current = observe(saved ?? initialRingState(options.selfId, this.startingMembers(membership), options.buckets), options.selfId);
    this.save();
  }

  private startingMembers(membership: MembershipState) {
    const members = ringMembers(membership);
    return members.some((m) => m.id === this.options.selfId) ? members : [...members, { id: this.options.selfId, weight: 1 }];
  }

  private loadSaved(): RingState | undefined {
    let raw: unknown;
    try {
      raw = this.options.persistence.load();
    } catch (error) {
      this.options.log.warn({ err: error }, 'saved ring state cannot be read; starting from the member list');
      return undefined;
    }
    if (raw === undefined) return undefined;
    const checked = ringStateFromWire(raw, this.options.buckets);
    if (!checked.ok) {
      this.options.log.warn({ reason: checked.reason }, 'saved ring state is invalid; starting from the member list');
      return undefined;
    }
    return checked.state;
  }

  get state(): RingState {
    return this.current;
  }

  /** What gossip carries. */
  toWire(): WireRingState {
    return ringStateToWire(this.current);
  }

  start(): void {
    this.timer = this.options.env.every(this.options.intervalMs, () => this.step());
    this.started = true;
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.stepTimer?.cancel();
    this.stepTimer = undefined;
    this.started = false;
    if (this.saveTimer !== undefined) this.save();
  }

  onChange(listener: RingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Merges a ring state a peer sent; an invalid one is logged and ignored. */
  merge(value: unknown, from: string): void {
    if (value === undefined) return;
    const checked = ringStateFromWire(value, this.options.buckets);
    if (!checked.ok) {
      this.options.log.warn({ from, reason: checked.reason }, 'ring state rejected');
      return;
    }
    this.adopt(mergeRingStates(this.current, checked.state));
    this.cancelOwnLeave();
    this.stepSoon();
  }

  /**
   * The claimant's step, soon: after a merge it runs once the reply to the peer has gone, so a
   * claim (some milliseconds) never delays a gossip exchange past its timeout.
   */
  stepSoon(): void {
    if (!this.started || this.stepTimer !== undefined) return;
    this.stepTimer = this.options.env.after(0, () => {
      this.stepTimer = undefined;
      this.step();
    });
  }

  /** The claimant's step, when this node is the claimant. */
  step(): void {
    const next = claimantStep(this.current, this.view(), this.cache().transition);
    if (next === undefined) return;
    this.options.log.info(
      { version: next.version, planned: next.next !== null, members: next.members.map((m) => m.id) },
      next.next === null ? 'ring change finished' : 'ring change planned',
    );
    this.adopt(next);
  }

  /** The membership as the claimant core sees it. */
  view(): ClusterView {
    const membership = this.options.membership();
    const confirmedOthers = membership.members.some((m) => m.confirmed && m.id !== this.options.selfId && m.status !== 'leaving');
    const seedsHeard = this.options.seedsHeard?.() ?? true;
    return {
      selfId: this.options.selfId,
      replicas: this.options.replicas,
      alone: !confirmedOthers && seedsHeard,
      seedsHeard,
      members: membership.members
        .filter((m) => m.confirmed)
        .map((m) => ({
          id: m.id,
          weight: m.weight,
          ...(m.zone ? { zone: m.zone } : {}),
          up: m.status === 'up' || m.id === this.options.selfId,
          gone: m.status === 'leaving',
          incarnation: m.incarnation,
          vouched: m.vouched,
        })),
    };
  }

  /** The current ring: who owns each bucket now. */
  ring(): Ring {
    return this.cache().ring;
  }

  /** The plan in progress, or undefined. */
  transition(): Transition | undefined {
    return this.cache().transition;
  }

  /** The move of `bucket` under the plan in progress, or undefined when it does not move. */
  moveOf(bucket: number): BucketMove | undefined {
    return this.cache().transition?.moves.get(bucket);
  }

  switched(move: BucketMove): boolean {
    return hasSwitched(this.current, move);
  }

  /**
   * Whether every up member has held the current version for at least `forMs`: writes routed by an
   * older version have been answered (or timed out) by then.
   */
  settled(forMs: number): boolean {
    const state = this.current;
    if (!seenByAllUp(state, this.view())) {
      this.settledSince = undefined;
      return false;
    }
    const nowMs = this.options.env.nowMs();
    const since = this.settledSince;
    if (since === undefined || since.version !== state.version || since.claimant !== state.claimant) {
      this.settledSince = { version: state.version, claimant: state.claimant, atMs: nowMs };
      return forMs <= 0;
    }
    return nowMs - since.atMs >= forMs;
  }

  /** Why the claimant cannot change the ring now, or undefined. */
  notReady(): string | undefined {
    return notReady(this.current, this.view());
  }

  /** Records buckets this node has received in full under the current plan. */
  received(version: number, claimant: string, buckets: readonly number[]): boolean {
    const state = this.current;
    if (state.version !== version || state.claimant !== claimant || state.next === null) return false;
    this.adopt(markReceived(state, this.options.selfId, buckets));
    this.stepSoon();
    return true;
  }

  requestLeave(id: string): void {
    this.adopt(requestLeave(this.current, id));
    this.stepSoon();
  }

  /**
   * `kai join` (check-node) on this node: a leave asked of it before, which a state merged later
   * may still carry, is cancelled, so it joins again.
   */
  joinAsked(): void {
    this.joinPending = true;
    this.cancelOwnLeave();
  }

  private cancelOwnLeave(): void {
    if (!this.joinPending) return;
    const state = this.current;
    if (state.owners.includes(this.options.selfId)) return;
    const cancelled = cancelLeave(state, this.options.selfId);
    if (cancelled !== state) this.adopt(cancelled);
  }

  requestReplace(old: string, replacement: string): void {
    this.adopt(requestReplace(this.current, old, replacement));
    this.stepSoon();
  }

  private cache(): { ring: Ring; transition: Transition | undefined } {
    const state = this.current;
    if (this.ringCache?.state !== state) {
      const sameRing = this.ringCache !== undefined && this.ringCache.state.owners === state.owners && this.ringCache.state.next === state.next;
      this.ringCache = sameRing
        ? { ...this.ringCache!, state }
        : {
            state,
            ring: ringFromOwners(state.members, state.owners, { buckets: this.options.buckets }),
            transition: transitionOf(state, this.options.replicas),
          };
    }
    return this.ringCache!;
  }

  private adopt(next: RingState): void {
    const previous = this.current;
    const observed = observe(next, this.options.selfId);
    if (sameRingState(observed, previous)) return;
    this.current = observed;
    // A version this node made is saved before anyone can hear of it: restarted without it, the
    // node could make another plan under the same version. What it learned from peers, and marks
    // within a version (who has seen it, which buckets are received), come back by gossip if a
    // crash loses them: those are saved at most once per save interval, never in a reply's path.
    const made = observed.claimant === this.options.selfId && (observed.version !== previous.version || observed.claimant !== previous.claimant);
    if (made) this.save();
    else this.saveSoon();
    for (const listener of this.listeners) listener(observed, previous);
  }

  private saveSoon(): void {
    if (this.saveTimer !== undefined) return;
    this.saveTimer = this.options.env.after(ringSaveIntervalMs, () => {
      this.saveTimer = undefined;
      this.save();
    });
  }

  private save(): void {
    this.saveTimer?.cancel();
    this.saveTimer = undefined;
    try {
      this.options.persistence.save(this.toWire());
    } catch (error) {
      this.options.log.error({ err: error }, 'ring state cannot be saved');
    }
  }
}
