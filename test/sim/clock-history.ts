/**
 * A history of client operations with the vector clocks behind them, and the checks the healing
 * simulations run against it. Each write records the clock of the version it wrote and the
 * replicas that acknowledged it; each read records every version it reconciled (tombstones and
 * expired ones included) and the replicas that answered it. That makes the checks exact:
 *
 * - A read answered by a primary replica that acknowledged an earlier write (one that completed
 *   before the read began) must return that write or a version descending from it: the replica
 *   committed it, and reconciliation never drops a version unless another descends from it.
 * - Under the same condition, a read never returns a live value that an earlier acknowledged
 *   write or delete superseded: overwritten, deleted and expired-then-overwritten values stay gone.
 * - After the cluster healed, every primary of every key holds, for each acknowledged write, that
 *   write or a version descending from it, and no value appears that no client wrote.
 *
 * A read that no acknowledging primary answered may be stale (a sloppy quorum does not overlap
 * every write): Dynamo's eventual consistency, checked only once the cluster has healed.
 */
import { assert } from '../../src/errors';
import { isLive, type Version } from '../../src/storage/record';
import { compare, descends, type VClock } from '../../src/vclock';
import { listFailures } from './checkers';

export type ClockOperationKind = 'set' | 'delete' | 'incr' | 'read';

export interface ClockOperation {
  readonly id: number;
  readonly via: string;
  readonly kind: ClockOperationKind;
  readonly key: string;
  /** The value a set wrote (unique per history). */
  readonly value: string | undefined;
  readonly invokedAtMs: number;
  completedAtMs: number | undefined;
  outcome: 'pending' | 'ok' | 'failed';
  /** The version an acknowledged write wrote; undefined when it wrote none (NOT_FOUND, NOT_STORED). */
  written: Version | undefined;
  acknowledgedBy: readonly string[];
  /** What an acknowledged read reconciled, and which replicas answered it. */
  readVersions: readonly Version[] | undefined;
  answeredBy: readonly string[];
  error: string | undefined;
}

export class ClockHistory {
  readonly operations: ClockOperation[] = [];
  private nextValue = 0;

  constructor(private readonly nowMs: () => number) {}

  uniqueValue(via: string): string {
    return `${via.split(':')[0]}-${this.nextValue++}`;
  }

  invoke(via: string, kind: ClockOperationKind, key: string, value?: string): ClockOperation {
    const operation: ClockOperation = {
      id: this.operations.length,
      via,
      kind,
      key,
      value,
      invokedAtMs: this.nowMs(),
      completedAtMs: undefined,
      outcome: 'pending',
      written: undefined,
      acknowledgedBy: [],
      readVersions: undefined,
      answeredBy: [],
      error: undefined,
    };
    this.operations.push(operation);
    return operation;
  }

  wrote(operation: ClockOperation, written: Version | undefined, acknowledgedBy: readonly string[]): void {
    this.complete(operation);
    operation.written = written;
    operation.acknowledgedBy = acknowledgedBy;
  }

  read(operation: ClockOperation, versions: readonly Version[], answeredBy: readonly string[]): void {
    this.complete(operation);
    operation.readVersions = versions;
    operation.answeredBy = answeredBy;
  }

  fail(operation: ClockOperation, error: unknown): void {
    assert(operation.outcome === 'pending', `operation ${operation.id} completes once`);
    operation.outcome = 'failed';
    operation.completedAtMs = this.nowMs();
    operation.error = error instanceof Error ? error.message : String(error);
  }

  private complete(operation: ClockOperation): void {
    assert(operation.outcome === 'pending', `operation ${operation.id} completes once`);
    operation.outcome = 'ok';
    operation.completedAtMs = this.nowMs();
  }

  /** Acknowledged operations that wrote a version. */
  writes(): ClockOperation[] {
    return this.operations.filter((operation) => operation.outcome === 'ok' && operation.written !== undefined);
  }

  keys(): string[] {
    return [...new Set(this.operations.map((operation) => operation.key))].sort();
  }
}

export interface CheckContext {
  /** The key's primary replicas (fallback copies are handed off and dropped, so only these keep writes). */
  readonly primariesOf: (key: string) => readonly string[];
  /** When each node was wiped: it no longer holds what it acknowledged before. */
  readonly wipedAtMs: ReadonlyMap<string, readonly number[]>;
  /** Margin around expiry times, for the clock skew between nodes and the checker. */
  readonly expiryMarginMs: number;
}

function describe(operation: ClockOperation): string {
  const what = operation.kind === 'set' ? `set ${operation.key}=${operation.value}` : `${operation.kind} ${operation.key}`;
  return `${what} via ${operation.via} (#${operation.id}, ${operation.invokedAtMs}..${operation.completedAtMs ?? '?'} ms, ${operation.outcome})`;
}

function clockText(clock: VClock): string {
  return clock.map((entry) => `${entry.node}:${entry.counter}`).join(',');
}

/** The primaries that acknowledged `write` and still hold it at `atMs` (not wiped since). */
function durableHolders(write: ClockOperation, context: CheckContext, atMs: number): string[] {
  const primaries = context.primariesOf(write.key);
  return write.acknowledgedBy.filter((node) => {
    const wipes = context.wipedAtMs.get(node) ?? [];
    return primaries.includes(node) && !wipes.some((wipedAtMs) => wipedAtMs >= write.completedAtMs! && wipedAtMs <= atMs);
  });
}

function valueOf(version: Version): string {
  return version.tombstone ? '<tombstone>' : version.value.toString();
}

/** Reads that acknowledged, with the writes that completed before each began. */
function readsWithEarlierWrites(history: ClockHistory): { read: ClockOperation; earlier: ClockOperation[] }[] {
  const writes = history.writes();
  return history.operations
    .filter((operation) => operation.kind === 'read' && operation.outcome === 'ok')
    .map((read) => ({ read, earlier: writes.filter((write) => write.key === read.key && write.completedAtMs! < read.invokedAtMs) }));
}

function answeredByHolder(read: ClockOperation, write: ClockOperation, context: CheckContext): boolean {
  const holders = durableHolders(write, context, read.completedAtMs!);
  return read.answeredBy.some((node) => holders.includes(node));
}

/**
 * Reads that returned a live value an earlier acknowledged write or delete superseded. A read is
 * held to this when a primary that acknowledged the superseding write answered it, or, from
 * `strictSinceMs` on (once the cluster has healed), always.
 */
export function staleViolations(history: ClockHistory, context: CheckContext, strictSinceMs = Number.MAX_SAFE_INTEGER): string[] {
  const violations: string[] = [];
  for (const { read, earlier } of readsWithEarlierWrites(history)) {
    for (const write of earlier) {
      if (read.invokedAtMs < strictSinceMs && !answeredByHolder(read, write, context)) continue;
      // Every primary that acknowledged it was wiped since: the write is lost with those disks.
      if (durableHolders(write, context, read.completedAtMs!).length === 0) continue;
      for (const version of read.readVersions ?? []) {
        const live = isLive(version, read.completedAtMs! + context.expiryMarginMs);
        if (live && compare(write.written!.clock, version.clock) === 'after') {
          violations.push(`${describe(read)} returned ${valueOf(version)}, superseded by ${describe(write)} before the read began`);
        }
      }
    }
  }
  return violations;
}

/**
 * Every violation of the read checks, one sentence each: reads that missed an earlier write a
 * primary answering them had acknowledged, and stale reads (staleViolations). For histories in
 * which nothing is reaped: a reaped tombstone legitimately leaves nothing behind.
 */
export function readViolations(history: ClockHistory, context: CheckContext): string[] {
  const violations: string[] = [];
  for (const { read, earlier } of readsWithEarlierWrites(history)) {
    const versions = read.readVersions ?? [];
    for (const write of earlier) {
      if (!answeredByHolder(read, write, context)) continue;
      const writtenClock = write.written!.clock;
      if (!versions.some((version) => descends(version.clock, writtenClock))) {
        violations.push(
          `${describe(read)} answered by ${read.answeredBy.join(', ')} misses ${describe(write)} [${clockText(writtenClock)}], ` +
            `acknowledged by ${write.acknowledgedBy.join(', ')}; it returned ${versions.map(valueOf).join(', ') || 'nothing'}`,
        );
      }
    }
  }
  return [...violations, ...staleViolations(history, context)];
}

/**
 * Violations of the final state: `heldOn(node, key)` is what each primary holds once the cluster
 * healed. Every acknowledged write is held by every primary (or superseded by a version held), and
 * every value held was written by a client.
 */
export function finalViolations(
  history: ClockHistory,
  context: CheckContext,
  heldOn: (node: string, key: string) => readonly Version[],
): string[] {
  const violations: string[] = [];
  for (const write of history.writes()) {
    // Every primary that acknowledged it was wiped since: the write had no durable copy left to
    // heal from (two disks lost), which no replication can undo.
    if (durableHolders(write, context, Number.MAX_SAFE_INTEGER).length === 0) continue;
    for (const node of context.primariesOf(write.key)) {
      const held = heldOn(node, write.key);
      if (!held.some((version) => descends(version.clock, write.written!.clock))) {
        violations.push(`${node} lost ${describe(write)}: it holds ${held.map(valueOf).join(', ') || 'nothing'}`);
      }
    }
  }
  const written = new Set(history.operations.map((operation) => `${operation.key}\u0000${operation.value}`));
  const writtenValues = new Set(history.writes().map((operation) => `${operation.key}\u0000${operation.written!.value.toString()}`));
  for (const key of history.keys()) {
    for (const node of context.primariesOf(key)) {
      for (const version of heldOn(node, key)) {
        if (version.tombstone) continue;
        const id = `${key}\u0000${version.value.toString()}`;
        if (!written.has(id) && !writtenValues.has(id) && !/^\d+ *$/.test(version.value.toString())) {
          violations.push(`${node} holds ${key}=${version.value.toString()}, which no client wrote`);
        }
      }
    }
  }
  return violations;
}

export function assertNoViolations(violations: readonly string[], what: string, seedNote: string): void {
  if (violations.length === 0) return;
  throw new Error(`${violations.length} ${what}:\n${listFailures(violations, (violation) => violation)}\n${seedNote}`);
}
