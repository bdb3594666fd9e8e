/**
 * The read checks the healing fault tests rely on, on histories built by hand: a checker that
 * cannot fail proves nothing, so each kind of problem is shown to be caught, and each allowed
 * answer (concurrent writes as siblings, unacknowledged writes either way) to pass.
 */
import { checkRead, OperationHistory, type ProblemKind, type RecordedOperation } from './history';

const node = '10.0.0.11:11011';

function kindsOf(history: OperationHistory, key: string, values: readonly string[], options: { readAtMs?: number; ordered?: (later: RecordedOperation, earlier: RecordedOperation) => boolean } = {}): ProblemKind[] {
  const readAtMs = options.readAtMs ?? Date.now();
  return checkRead(history, key, node, values, { readAtMs, unacknowledgedSettledAtMs: readAtMs, ordered: options.ordered })
    .map((problem) => problem.kind)
    .sort();
}

function set(history: OperationHistory, key: string, value: string, options: { exptimeSeconds?: number; chain?: string } = {}): RecordedOperation {
  return history.invoke('set', key, node, { value, ...options });
}

test('a value overwritten by a set invoked after its acknowledgement is caught, alone or beside its successor', () => {
  // Proves the overwritten and lost checks, and that the latest value alone passes.
  const history = new OperationHistory();
  history.complete(set(history, 'k', 'v1'), 'ok', 'STORED');
  history.complete(set(history, 'k', 'v2'), 'ok', 'STORED');
  expect(kindsOf(history, 'k', ['v2'])).toEqual([]);
  expect(kindsOf(history, 'k', ['v1', 'v2'])).toEqual(['overwritten']);
  expect(kindsOf(history, 'k', ['v1'])).toEqual(['lost', 'overwritten']);
  expect(kindsOf(history, 'k', [])).toEqual(['lost']);
});

test('concurrent sets may come back as siblings or either alone', () => {
  // Proves overlapping operations are not taken to supersede each other.
  const history = new OperationHistory();
  const first = set(history, 'k', 'v1');
  const second = set(history, 'k', 'v2');
  history.complete(first, 'ok', 'STORED');
  history.complete(second, 'ok', 'STORED');
  expect(kindsOf(history, 'k', ['v1', 'v2'])).toEqual([]);
  expect(kindsOf(history, 'k', ['v1'])).toEqual([]);
  expect(kindsOf(history, 'k', ['v2'])).toEqual([]);
  expect(kindsOf(history, 'k', [])).toEqual(['lost', 'lost']);
});

test('a value deleted afterwards, even by a delete answered NOT_FOUND, must not be read', () => {
  // Proves the deleted check, for both answers a delete can be acknowledged with.
  for (const reply of ['DELETED', 'NOT_FOUND']) {
    const history = new OperationHistory();
    history.complete(set(history, 'k', 'v1'), 'ok', 'STORED');
    history.complete(history.invoke('delete', 'k', node), 'ok', reply);
    expect(kindsOf(history, 'k', [])).toEqual([]);
    expect(kindsOf(history, 'k', ['v1'])).toEqual(['deleted']);
  }
});

test('an unacknowledged operation may or may not have taken effect', () => {
  // Proves failed operations are allowed either way: their value may appear, and they may have superseded.
  const history = new OperationHistory();
  history.complete(set(history, 'k', 'v1'), 'ok', 'STORED');
  history.complete(set(history, 'k', 'v2'), 'failed', 'timeout');
  history.complete(history.invoke('delete', 'k', node), 'failed', 'timeout');
  expect(kindsOf(history, 'k', ['v1'])).toEqual([]);
  expect(kindsOf(history, 'k', ['v2'])).toEqual([]);
  expect(kindsOf(history, 'k', [])).toEqual([]);
  expect(kindsOf(history, 'k', ['v3'])).toEqual(['phantom']);
});

test('an expired value must not be read, and an expired write is not missed', () => {
  // Proves the expiry check: past its exptime (plus margin) a value is a problem, its absence is not.
  const history = new OperationHistory();
  history.complete(set(history, 'k', 'v1', { exptimeSeconds: 2 }), 'ok', 'STORED');
  expect(kindsOf(history, 'k', ['v1'])).toEqual([]);
  const later = Date.now() + 10_000;
  expect(kindsOf(history, 'k', ['v1'], { readAtMs: later })).toEqual(['expired']);
  expect(kindsOf(history, 'k', [], { readAtMs: later })).toEqual([]);
});

test('with causal chains, writes of two sides of a partition are siblings, and each side keeps its last', () => {
  // Proves the partition test's ordering: real time does not order the two sides, the chain does.
  const history = new OperationHistory();
  const ordered = (later: RecordedOperation, earlier: RecordedOperation): boolean => later.chain === earlier.chain || earlier.chain === 'base';
  history.complete(set(history, 'k', 'base', { chain: 'base' }), 'ok', 'STORED');
  history.complete(set(history, 'k', 'a1', { chain: 'A' }), 'ok', 'STORED');
  history.complete(set(history, 'k', 'b1', { chain: 'B' }), 'ok', 'STORED');
  history.complete(set(history, 'k', 'a2', { chain: 'A' }), 'ok', 'STORED');
  expect(kindsOf(history, 'k', ['a2', 'b1'], { ordered })).toEqual([]);
  expect(kindsOf(history, 'k', ['a2'], { ordered })).toEqual(['lost']);
  expect(kindsOf(history, 'k', ['a1', 'a2', 'b1'], { ordered })).toEqual(['overwritten']);
  expect(kindsOf(history, 'k', ['a2', 'b1', 'base'], { ordered })).toEqual(['overwritten']);
});
