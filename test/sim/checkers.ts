/**
 * Checks for simulated clusters, kept generic: they take virtual-time predicates, a history of
 * client operations, and snapshots of what replicas hold, so cluster tests collect data and call
 * these. The invariants are those a Dynamo-style store promises: after faults heal, every
 * acknowledged write is readable or causally superseded, nothing appears that was never written,
 * and the replicas of a key converge.
 */
import { assert } from '../../src/errors';
import type { Version } from '../../src/storage/record';
import { descends, type VClock } from '../../src/vclock';
import type { SimScheduler } from './scheduler';

/** Failures listed in one error message; the rest are counted. */
const failuresShownMax = 10;
/** Operations one history records; a longer history means a workload without a bound. */
export const historyOperationsMaxDefault = 100_000;

export function listFailures<T>(failures: readonly T[], describe: (failure: T) => string): string {
  const shown = failures.slice(0, failuresShownMax).map((failure) => `  - ${describe(failure)}`);
  if (failures.length > failuresShownMax) shown.push(`  ... and ${failures.length - failuresShownMax} more`);
  return shown.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Virtual-time assertions

/** Runs the simulation until `predicate` holds; fails, naming the seed, if `maxMs` pass first. */
export async function assertEventually(
  scheduler: SimScheduler,
  predicate: () => boolean,
  maxMs: number,
  description: string,
): Promise<void> {
  const startedMs = scheduler.elapsedMs();
  if (await scheduler.runUntil(predicate, maxMs)) return;
  throw new Error(
    `never true within ${maxMs} ms of virtual time (from ${startedMs} ms): ${description}; ${scheduler.seedNote()}`,
  );
}

/**
 * Runs the simulation for `durationMs`, checking `invariant` after every event. The invariant
 * returns a sentence naming what is wrong, or undefined when all is well.
 */
export async function assertAlways(
  scheduler: SimScheduler,
  invariant: () => string | undefined,
  durationMs: number,
): Promise<void> {
  let problem: string | undefined;
  const broken = await scheduler.runUntil(() => (problem = invariant()) !== undefined, durationMs);
  if (broken) throw new Error(`invariant broken at ${scheduler.elapsedMs()} ms: ${problem}; ${scheduler.seedNote()}`);
}

// ---------------------------------------------------------------------------------------------
// History of client operations

export type OperationKind = 'write' | 'delete' | 'read';

export interface Operation {
  readonly id: number;
  readonly client: string;
  readonly kind: OperationKind;
  readonly key: string;
  /** The value a write stored; values are unique per history (see `uniqueValue`). */
  readonly value: string | undefined;
  readonly invokedAtMs: number;
  completedAtMs: number | undefined;
  /** 'failed' is not proof the write did not happen: it may land later, or on some replicas. */
  outcome: 'pending' | 'ok' | 'failed';
  /** For reads: the values returned (one per sibling). */
  readValues: readonly string[] | undefined;
  /** For writes and deletes: the clock of the version created, when the test can see it. */
  clock: VClock | undefined;
  error: string | undefined;
}

export interface Completion {
  readonly readValues?: readonly string[];
  readonly clock?: VClock;
}

/** A record of what clients asked and what they were told, in virtual time. */
export class History {
  private readonly recorded: Operation[] = [];
  private readonly valuesIssued = new Map<string, number>();

  constructor(
    private readonly nowMs: () => number,
    private readonly operationsMax = historyOperationsMaxDefault,
  ) {}

  get operations(): readonly Operation[] {
    return this.recorded;
  }

  /** A value no other write of this history uses, so a value read names the write that made it. */
  uniqueValue(client: string): string {
    const count = (this.valuesIssued.get(client) ?? 0) + 1;
    this.valuesIssued.set(client, count);
    return `${client}#${count}`;
  }

  invoke(client: string, kind: OperationKind, key: string, value?: string): Operation {
    assert(this.recorded.length < this.operationsMax, `a history holds at most ${this.operationsMax} operations`);
    assert((kind === 'write') === (value !== undefined), 'writes, and only writes, carry a value');
    const operation: Operation = {
      id: this.recorded.length,
      client,
      kind,
      key,
      value,
      invokedAtMs: this.nowMs(),
      completedAtMs: undefined,
      outcome: 'pending',
      readValues: undefined,
      clock: undefined,
      error: undefined,
    };
    this.recorded.push(operation);
    return operation;
  }

  ok(operation: Operation, completion: Completion = {}): void {
    assert(operation.outcome === 'pending', `operation ${operation.id} completes once`);
    operation.outcome = 'ok';
    operation.completedAtMs = this.nowMs();
    operation.readValues = completion.readValues;
    operation.clock = completion.clock;
  }

  fail(operation: Operation, error: unknown): void {
    assert(operation.outcome === 'pending', `operation ${operation.id} completes once`);
    operation.outcome = 'failed';
    operation.completedAtMs = this.nowMs();
    operation.error = error instanceof Error ? error.message : String(error);
  }

  /**
   * Runs a client call and records it: 'ok' with what `complete` extracts from its result, or
   * 'failed' with its error (returned as undefined, since failures are expected under faults).
   */
  async record<T>(
    client: string,
    kind: OperationKind,
    key: string,
    value: string | undefined,
    call: () => Promise<T>,
    complete: (result: T) => Completion = () => ({}),
  ): Promise<T | undefined> {
    const operation = this.invoke(client, kind, key, value);
    try {
      const result = await call();
      this.ok(operation, complete(result));
      return result;
    } catch (error) {
      this.fail(operation, error);
      return undefined;
    }
  }

  acknowledged(kind: OperationKind): Operation[] {
    return this.recorded.filter((operation) => operation.kind === kind && operation.outcome === 'ok');
  }
}

function describeOperation(operation: Operation): string {
  const what =
    operation.kind === 'write' ? `write ${operation.key}=${operation.value}` : `${operation.kind} ${operation.key}`;
  const span = `${operation.invokedAtMs}..${operation.completedAtMs ?? '?'} ms`;
  return `${what} by ${operation.client} (#${operation.id}, ${span}, ${operation.outcome})`;
}

// ---------------------------------------------------------------------------------------------
// Acknowledged writes survive

/** What a key finally holds, as a read after healing sees it; `value` null for a tombstone. */
export interface FinalVersion {
  readonly value: string | null;
  readonly clock?: VClock;
}

export interface LostOperation {
  readonly operation: Operation;
  readonly finalVersions: readonly FinalVersion[];
  readonly why: string;
}

/** True when `other` may have seen `operation`'s effect: it was still running after it began. */
function mayHaveSeen(other: Operation, operation: Operation): boolean {
  return other.outcome !== 'ok' || (other.completedAtMs ?? Infinity) > operation.invokedAtMs;
}

/**
 * Acknowledged writes and deletes whose effect is gone. With clocks (the test saw the version
 * each operation created, and the final versions' clocks) the check is exact: some final version
 * must descend from the operation's clock. Without clocks it is conservative, so it never blames
 * a correct store: a write is kept if its value is read, or if another write or delete of the key
 * could have seen it and superseded it; a delete is lost if a value acknowledged before the
 * delete began is read again.
 */
export function findLostOperations(
  history: History,
  finalVersions: (key: string) => readonly FinalVersion[],
): LostOperation[] {
  const lost: LostOperation[] = [];
  const writeByValue = new Map<string, Operation>();
  for (const operation of history.operations) {
    if (operation.value !== undefined) writeByValue.set(operation.value, operation);
  }
  for (const operation of history.operations) {
    if (operation.outcome !== 'ok' || operation.kind === 'read') continue;
    const versions = finalVersions(operation.key);
    const why = lossOf(operation, versions, history, writeByValue);
    if (why) lost.push({ operation, finalVersions: versions, why });
  }
  return lost;
}

function lossOf(
  operation: Operation,
  versions: readonly FinalVersion[],
  history: History,
  writeByValue: ReadonlyMap<string, Operation>,
): string | undefined {
  const clock = operation.clock;
  if (clock && versions.every((version) => version.clock)) {
    const kept = versions.some((version) => version.clock && descends(version.clock, clock));
    return kept ? undefined : 'no final version descends from its clock';
  }
  if (operation.kind === 'write') {
    if (versions.some((version) => version.value === operation.value)) return undefined;
    const superseder = history.operations.find(
      (other) =>
        other !== operation && other.key === operation.key && other.kind !== 'read' && mayHaveSeen(other, operation),
    );
    return superseder ? undefined : 'its value is gone and no later write or delete of the key could have replaced it';
  }
  const resurrected = versions.find((version) => {
    const writer = version.value === null ? undefined : writeByValue.get(version.value);
    return writer?.outcome === 'ok' && (writer.completedAtMs ?? Infinity) < operation.invokedAtMs;
  });
  return resurrected ? `value ${resurrected.value}, acknowledged before the delete began, is back` : undefined;
}

/** Final values that no write of the history ever stored. */
export function findPhantomValues(
  history: History,
  keys: readonly string[],
  finalVersions: (key: string) => readonly FinalVersion[],
): string[] {
  const written = new Set(history.operations.map((operation) => `${operation.key}\u0000${operation.value}`));
  const phantoms: string[] = [];
  for (const key of keys) {
    for (const version of finalVersions(key)) {
      if (version.value !== null && !written.has(`${key}\u0000${version.value}`)) phantoms.push(`${key}=${version.value}`);
    }
  }
  return phantoms;
}

/** Fails, listing them, when acknowledged operations were lost or values appeared from nowhere. */
export function assertNoLostWrites(
  history: History,
  finalVersions: (key: string) => readonly FinalVersion[],
  seedNote: string,
): void {
  const keys = [...new Set(history.operations.map((operation) => operation.key))];
  const lost = findLostOperations(history, finalVersions);
  const phantoms = findPhantomValues(history, keys, finalVersions);
  if (lost.length === 0 && phantoms.length === 0) return;
  const parts: string[] = [];
  if (lost.length > 0) {
    parts.push(
      `${lost.length} acknowledged operation(s) lost:\n${listFailures(lost, (loss) => {
        const found = loss.finalVersions.map((version) => version.value ?? '<tombstone>').join(', ') || 'nothing';
        return `${describeOperation(loss.operation)}: ${loss.why}; the key holds ${found}`;
      })}`,
    );
  }
  if (phantoms.length > 0) {
    parts.push(`${phantoms.length} value(s) never written:\n${listFailures(phantoms, (phantom) => phantom)}`);
  }
  throw new Error(`${parts.join('\n')}\n${seedNote}`);
}

// ---------------------------------------------------------------------------------------------
// Replicas converge

/** A canonical text for a key's versions, equal on two replicas exactly when they hold the same. */
export function canonicalVersions(versions: readonly Version[]): string {
  return versions
    .map((version) =>
      JSON.stringify([
        version.clock.map((entry) => [entry.node, entry.counter]),
        version.tombstone ? null : version.value.toString('hex'),
        version.flags,
        version.expiresAtMs,
      ]),
    )
    .sort()
    .join('|');
}

export interface Divergence {
  readonly key: string;
  /** Each replica's canonical versions; undefined where the replica does not hold the key. */
  readonly states: ReadonlyMap<string, string | undefined>;
}

/**
 * Keys whose replicas disagree. `snapshots` maps each node to its key -> canonical versions;
 * `replicasOf` names the nodes that must hold a key (default: every node in `snapshots`).
 */
export function findDivergence(
  snapshots: ReadonlyMap<string, ReadonlyMap<string, string>>,
  replicasOf: (key: string) => readonly string[] = () => [...snapshots.keys()],
): Divergence[] {
  const keys = new Set<string>();
  for (const snapshot of snapshots.values()) for (const key of snapshot.keys()) keys.add(key);
  const divergent: Divergence[] = [];
  for (const key of [...keys].sort()) {
    const states = new Map(replicasOf(key).map((node) => [node, snapshots.get(node)?.get(key)] as const));
    if (new Set(states.values()).size > 1) divergent.push({ key, states });
  }
  return divergent;
}

export function assertConverged(
  snapshots: ReadonlyMap<string, ReadonlyMap<string, string>>,
  seedNote: string,
  replicasOf?: (key: string) => readonly string[],
): void {
  const divergent = findDivergence(snapshots, replicasOf);
  if (divergent.length === 0) return;
  const describe = (divergence: Divergence): string =>
    `${divergence.key}: ${[...divergence.states].map(([node, state]) => `${node}=${state ?? 'missing'}`).join('; ')}`;
  throw new Error(`${divergent.length} key(s) diverge across replicas:\n${listFailures(divergent, describe)}\n${seedNote}`);
}
