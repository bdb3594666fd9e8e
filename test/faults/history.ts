/**
 * A history of the memcache operations fault tests send, and the checks a read must pass against
 * it once the cluster has healed. Every invocation and every completion takes the next number of
 * one counter in the test process, so the numbers order them as they happened in real time: an
 * operation invoked after another completed has a larger invocation number than that completion.
 *
 * An operation that errors or times out is not acknowledged: it may or may not have taken effect,
 * now or later (a paused node applies what it buffered when resumed), so the checks never count
 * on it either way. Plain Node.
 */

export type OperationKind = 'set' | 'delete';

export interface RecordedOperation {
  readonly id: number;
  readonly kind: OperationKind;
  readonly key: string;
  /** A set's value; values are unique across the history, so a value read names its write. */
  readonly value: string | undefined;
  readonly exptimeSeconds: number;
  /** The node the client sent it to. */
  readonly node: string;
  /**
   * The causal chain it belongs to: operations of one chain are issued one after another by
   * clients that could see each other's effects. `ordered` checks may use it (a partition test's
   * two sides are two chains); '' when the test orders by real time alone.
   */
  readonly chain: string;
  readonly invokedSeq: number;
  readonly invokedAtMs: number;
  completedSeq: number | undefined;
  completedAtMs: number | undefined;
  outcome: 'pending' | 'ok' | 'failed';
  /** STORED, DELETED or NOT_FOUND when acknowledged; the error otherwise. */
  reply: string | undefined;
}

/** Operations one history holds at most: a bound on the workload's memory. */
export const historyOperationsMax = 500_000;
/** Problems listed in one failure message; the rest are counted. */
const problemsShownMax = 15;

export class OperationHistory {
  private sequence = 0;
  private readonly recorded: RecordedOperation[] = [];
  private readonly writerOfValue = new Map<string, RecordedOperation>();
  private readonly ofKey = new Map<string, RecordedOperation[]>();

  get operations(): readonly RecordedOperation[] {
    return this.recorded;
  }

  invoke(kind: OperationKind, key: string, node: string, options: { value?: string; exptimeSeconds?: number; chain?: string } = {}): RecordedOperation {
    if (this.recorded.length >= historyOperationsMax) throw new Error(`assertion failed: a history holds at most ${historyOperationsMax} operations`);
    if ((kind === 'set') !== (options.value !== undefined)) throw new Error('assertion failed: sets, and only sets, carry a value');
    if (options.value !== undefined && this.writerOfValue.has(options.value)) throw new Error(`assertion failed: value ${options.value} written twice`);
    const operation: RecordedOperation = {
      id: this.recorded.length,
      kind,
      key,
      value: options.value,
      exptimeSeconds: options.exptimeSeconds ?? 0,
      node,
      chain: options.chain ?? '',
      invokedSeq: ++this.sequence,
      invokedAtMs: Date.now(),
      completedSeq: undefined,
      completedAtMs: undefined,
      outcome: 'pending',
      reply: undefined,
    };
    this.recorded.push(operation);
    if (options.value !== undefined) this.writerOfValue.set(options.value, operation);
    const list = this.ofKey.get(key) ?? [];
    list.push(operation);
    this.ofKey.set(key, list);
    return operation;
  }

  complete(operation: RecordedOperation, outcome: 'ok' | 'failed', reply: string): void {
    if (operation.outcome !== 'pending') throw new Error(`assertion failed: operation ${operation.id} completes once`);
    operation.outcome = outcome;
    operation.reply = reply;
    operation.completedSeq = ++this.sequence;
    operation.completedAtMs = Date.now();
  }

  /** Runs `call` as `operation`: acknowledged with its reply, or failed with its error (returned as undefined). */
  async run(operation: RecordedOperation, call: () => Promise<string>): Promise<string | undefined> {
    try {
      const reply = await call();
      this.complete(operation, 'ok', reply);
      return reply;
    } catch (error) {
      this.complete(operation, 'failed', error instanceof Error ? error.message : String(error));
      return undefined;
    }
  }

  writerOf(value: string): RecordedOperation | undefined {
    return this.writerOfValue.get(value);
  }

  operationsOf(key: string): readonly RecordedOperation[] {
    return this.ofKey.get(key) ?? [];
  }

  keys(): string[] {
    return [...this.ofKey.keys()];
  }

  /** Counts for a summary line. */
  summary(): string {
    const count = (predicate: (operation: RecordedOperation) => boolean): number => this.recorded.filter(predicate).length;
    return [
      `${this.recorded.length} operations on ${this.ofKey.size} keys`,
      `sets ${count((o) => o.kind === 'set' && o.outcome === 'ok')} acknowledged / ${count((o) => o.kind === 'set' && o.outcome === 'failed')} failed`,
      `deletes ${count((o) => o.reply === 'DELETED')} DELETED / ${count((o) => o.reply === 'NOT_FOUND')} NOT_FOUND / ${count((o) => o.kind === 'delete' && o.outcome === 'failed')} failed`,
      `expiring sets ${count((o) => o.exptimeSeconds > 0 && o.outcome === 'ok')} acknowledged`,
    ].join('; ');
  }
}

export function describeOperation(operation: RecordedOperation): string {
  const what = operation.kind === 'set' ? `set ${operation.key}=${operation.value}${operation.exptimeSeconds > 0 ? ` exptime ${operation.exptimeSeconds}s` : ''}` : `delete ${operation.key}`;
  const chain = operation.chain === '' ? '' : ` chain ${operation.chain}`;
  const reply = operation.outcome === 'failed' ? `failed: ${(operation.reply ?? '').slice(0, 120)}` : (operation.reply ?? 'pending');
  return `#${operation.id} ${what} via ${operation.node}${chain} [invoked ${operation.invokedSeq}, completed ${operation.completedSeq ?? '-'}] -> ${reply}`;
}

export type ProblemKind = 'phantom' | 'overwritten' | 'deleted' | 'expired' | 'lost';

export interface ReadProblem {
  readonly kind: ProblemKind;
  readonly key: string;
  /** The node the read went through. */
  readonly node: string;
  readonly detail: string;
}

export interface ReadCheckOptions {
  /** When the read was sent (Date.now()). */
  readonly readAtMs: number;
  /**
   * After this time no unacknowledged request is still waiting to be applied (every node resumed
   * and healed, the load stopped, plus the longest a forwarded write can wait): an expiring set
   * that failed has expired by this plus its exptime.
   */
  readonly unacknowledgedSettledAtMs: number;
  /**
   * Whether `later` may be causally after `earlier` (could have seen its effect). By default any
   * two operations of a key may be: real time orders them. A partition test passes "the same
   * side", since the two sides of a split cannot see each other.
   */
  readonly ordered?: (later: RecordedOperation, earlier: RecordedOperation) => boolean;
  /** Slack on expiry for clock granularity; 1 s by default. */
  readonly expiryMarginMs?: number;
}

const anyOrder = (_later: RecordedOperation, _earlier: RecordedOperation): boolean => true;

/**
 * The acknowledged sets and deletes of the key invoked after `write` was acknowledged, and
 * causally able to follow it. A delete answered NOT_FOUND counts: the client was told the key
 * held nothing, so the value it had written before must not be read again.
 */
export function supersedersOf(
  history: OperationHistory,
  write: RecordedOperation,
  ordered: (later: RecordedOperation, earlier: RecordedOperation) => boolean = anyOrder,
): RecordedOperation[] {
  if (write.outcome !== 'ok' || write.completedSeq === undefined) return [];
  const acknowledgedAt = write.completedSeq;
  return history
    .operationsOf(write.key)
    .filter((other) => other !== write && other.outcome === 'ok' && other.invokedSeq > acknowledgedAt && ordered(other, write));
}

/** When a set with an exptime has surely expired (Infinity for one without). */
function expiredAfterMs(write: RecordedOperation, options: ReadCheckOptions): number {
  if (write.exptimeSeconds === 0) return Infinity;
  const appliedByMs = write.outcome === 'ok' ? write.completedAtMs! : Math.max(write.completedAtMs ?? Infinity, options.unacknowledgedSettledAtMs);
  return appliedByMs + write.exptimeSeconds * 1000 + (options.expiryMarginMs ?? 1000);
}

/**
 * What is wrong with `values` (one per sibling; empty when not found) as the answer to a read of
 * `key` through `node` after the cluster healed:
 *
 * - phantom: a value no set of this key wrote;
 * - overwritten / deleted: a value whose set was acknowledged before some acknowledged set or
 *   delete of the key was invoked (that later operation supersedes it);
 * - expired: a value whose exptime has surely passed;
 * - lost: an acknowledged set that nothing supersedes, not expired, is missing, and no other
 *   operation of the key could have superseded it (one concurrent with it, or unacknowledged).
 */
export function checkRead(history: OperationHistory, key: string, node: string, values: readonly string[], options: ReadCheckOptions): ReadProblem[] {
  const ordered = options.ordered ?? anyOrder;
  const problems: ReadProblem[] = [];
  const returned = `returned [${values.join(', ')}]`;
  for (const value of values) {
    const write = history.writerOf(value);
    if (write === undefined || write.key !== key) {
      problems.push({ kind: 'phantom', key, node, detail: `${returned}: ${value} was never written to ${key}` });
      continue;
    }
    const superseders = supersedersOf(history, write, ordered);
    if (superseders.length > 0) {
      const first = superseders[0];
      const successorValues = superseders.filter((s) => s.value !== undefined && values.includes(s.value)).map((s) => s.value);
      const beside = successorValues.length > 0 ? ` (beside the later value${successorValues.length > 1 ? 's' : ''} ${successorValues.join(', ')}: a sibling)` : ' (no later value beside it)';
      problems.push({
        kind: superseders.every((s) => s.kind === 'delete') ? 'deleted' : 'overwritten',
        key,
        node,
        detail: `${returned}: ${describeOperation(write)} is superseded by ${superseders.length} later acknowledged operation(s), first ${describeOperation(first)}${beside}`,
      });
    }
    if (options.readAtMs > expiredAfterMs(write, options)) {
      problems.push({ kind: 'expired', key, node, detail: `${returned} at ${options.readAtMs}: ${describeOperation(write)} completed at ${write.completedAtMs} has expired` });
    }
  }
  // A set is accounted for when its value was read, it has expired, or another operation that may
  // have seen it (one still running after it began, or one whose outcome is unknown) superseded it
  // and is accounted for in turn: a delete leaves nothing to read, a set must be accounted for
  // itself. Found backwards from the grounded ones, so concurrent sets cannot excuse each other's
  // absence in a circle, and the cost stays quadratic in the key's operations.
  const operations = history.operationsOf(key);
  const mayHaveSeen = (other: RecordedOperation, write: RecordedOperation): boolean =>
    other !== write && ordered(other, write) && !(other.outcome === 'ok' && other.completedSeq! < write.invokedSeq);
  const accounted = new Set<RecordedOperation>();
  const grounded = operations.filter((operation) =>
    operation.kind === 'set'
      ? values.includes(operation.value!) || options.readAtMs > expiredAfterMs(operation, options)
      : operation.outcome === 'failed' || operation.reply === 'DELETED',
  );
  const queue = [...grounded];
  for (const operation of grounded) accounted.add(operation);
  while (queue.length > 0) {
    const superseding = queue.pop()!;
    for (const write of operations) {
      if (write.kind !== 'set' || accounted.has(write) || !mayHaveSeen(superseding, write)) continue;
      accounted.add(write);
      queue.push(write);
    }
  }
  for (const write of operations) {
    if (write.kind !== 'set' || write.outcome !== 'ok' || accounted.has(write)) continue;
    if (supersedersOf(history, write, ordered).length > 0) continue;
    problems.push({ kind: 'lost', key, node, detail: `${returned}: acknowledged ${describeOperation(write)} is missing and nothing superseded it` });
  }
  return problems;
}

/** Problems as lines for a failure message: counts by kind, then the first few. */
export function describeProblems(problems: readonly ReadProblem[]): string {
  const counts = new Map<string, number>();
  for (const problem of problems) counts.set(problem.kind, (counts.get(problem.kind) ?? 0) + 1);
  const lines = [`${problems.length} problem(s): ${[...counts].map(([kind, count]) => `${kind} ${count}`).join(', ')}`];
  for (const problem of problems.slice(0, problemsShownMax)) lines.push(`  - [${problem.kind}] ${problem.key} via ${problem.node}: ${problem.detail}`);
  if (problems.length > problemsShownMax) lines.push(`  ... and ${problems.length - problemsShownMax} more`);
  return lines.join('\n');
}
