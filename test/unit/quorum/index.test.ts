import { addFailure, addSuccess, allAnswered, effectiveQuorum, startJointQuorum, startQuorum, verdict } from '../../../src/quorum';

// With 3 asked and 2 needed: pending until 2 succeed (met) or 2 fail (unmet).
test('verdicts for 2 of 3', () => {
  let state = startQuorum<string>(['a', 'b', 'c'], 2);
  expect(verdict(state)).toBe('pending');
  state = addSuccess(state, 'a', 'va');
  expect(verdict(state)).toBe('pending');
  state = addFailure(state, 'b', 'b down');
  expect(verdict(state)).toBe('pending');
  state = addSuccess(state, 'c', 'vc');
  expect(verdict(state)).toBe('met');
  expect(state.successes).toEqual([
    { node: 'a', result: 'va', counted: true },
    { node: 'c', result: 'vc', counted: true },
  ]);
  expect(state.failures).toEqual([{ node: 'b', reason: 'b down' }]);
  expect(allAnswered(state)).toBe(true);

  let failing = startQuorum<string>(['a', 'b', 'c'], 2);
  failing = addFailure(failing, 'a', 'x');
  expect(verdict(failing)).toBe('pending');
  failing = addFailure(failing, 'b', 'y');
  expect(verdict(failing)).toBe('unmet');
  expect(allAnswered(failing)).toBe(false);
});

// Once met, later failures do not undo the verdict.
test('met stays met', () => {
  let state = startQuorum<number>(['a', 'b', 'c'], 1);
  state = addSuccess(state, 'a', 1);
  state = addFailure(addFailure(state, 'b', 'x'), 'c', 'y');
  expect(verdict(state)).toBe('met');
});

// A replica answers once: a second answer from it, success or failure, changes nothing.
test('one answer per replica', () => {
  let state = startQuorum<number>(['a', 'b'], 2);
  state = addSuccess(state, 'a', 1);
  expect(addSuccess(state, 'a', 2)).toBe(state);
  expect(addFailure(state, 'a', 'late')).toBe(state);
  expect(verdict(addSuccess(state, 'a', 3))).toBe('pending');
});

// The states are values: adding to one leaves the earlier state unchanged.
test('states are immutable', () => {
  const start = startQuorum<number>(['a', 'b'], 2);
  const next = addSuccess(start, 'a', 7);
  expect(start.successes).toEqual([]);
  expect(next.successes).toEqual([{ node: 'a', result: 7, counted: true }]);
  expect(addFailure(start, 'b', 'e').failures).toEqual([{ node: 'b', reason: 'e' }]);
  expect(start.failures).toEqual([]);
});

// Needing nothing is met at once; needing more than asked is capped at asked.
test('edge quorums', () => {
  expect(verdict(startQuorum(['a', 'b'], 0))).toBe('met');
  expect(verdict(startQuorum([], 0))).toBe('met');
  const capped = startQuorum<number>(['a', 'b'], 5);
  expect(capped.needed).toBe(2);
  expect(verdict(addSuccess(addSuccess(capped, 'a', 1), 'b', 2))).toBe('met');
  expect(verdict(addFailure(capped, 'a', 'e'))).toBe('unmet');
  // Every one of the asked must answer when all are needed.
  expect(verdict(addSuccess(startQuorum<number>(['a', 'b', 'c'], 3), 'a', 1))).toBe('pending');
});

// A success that does not count on its own (a stand-in holding nothing) meets the quorum only
// once every replica asked has answered, so it never outvotes one still to answer.
test('successes that do not count on their own wait for everyone', () => {
  let state = startQuorum<string>(['primary', 'stand-in-1', 'stand-in-2'], 2);
  state = addSuccess(state, 'stand-in-1', 'nothing', false);
  state = addSuccess(state, 'stand-in-2', 'nothing', false);
  expect(verdict(state)).toBe('pending');
  expect(verdict(addSuccess(state, 'primary', 'value'))).toBe('met');
  expect(verdict(addFailure(state, 'primary', 'down'))).toBe('met');
  expect(verdict(addSuccess(startQuorum<string>(['a', 'b', 'c'], 2), 'a', 'x', false))).toBe('pending');
  expect(verdict(addFailure(addFailure(startQuorum<string>(['a', 'b', 'c'], 2), 'b', 'e'), 'c', 'e'))).toBe('unmet');
});

// N is capped at the ring size, and R and W at N.
test('effectiveQuorum caps', () => {
  expect(effectiveQuorum({ n: 3, r: 2, w: 2 }, 5)).toEqual({ n: 3, r: 2, w: 2 });
  expect(effectiveQuorum({ n: 3, r: 2, w: 2 }, 3)).toEqual({ n: 3, r: 2, w: 2 });
  expect(effectiveQuorum({ n: 3, r: 2, w: 2 }, 1)).toEqual({ n: 1, r: 1, w: 1 });
  expect(effectiveQuorum({ n: 3, r: 3, w: 1 }, 2)).toEqual({ n: 2, r: 2, w: 1 });
  expect(effectiveQuorum({ n: 5, r: 7, w: 9 }, 10)).toEqual({ n: 5, r: 5, w: 5 });
});

// A write to a moving bucket is met only when the old list and the new list each meet their own W.
test('a joint quorum needs every group', () => {
  const groups = [
    { members: ['a', 'b', 'c'], needed: 2 },
    { members: ['b', 'c', 'd'], needed: 2 },
  ];
  let state = startJointQuorum<string>(['a', 'b', 'c', 'd'], groups);
  state = addSuccess(state, 'a', 'ok');
  state = addSuccess(state, 'd', 'ok');
  // Each group has one success: neither is met.
  expect(verdict(state)).toBe('pending');
  // b is in both lists and meets both.
  expect(verdict(addSuccess(state, 'b', 'ok'))).toBe('met');
  // Both of the shared members failing leaves each group at most one: unmet.
  expect(verdict(addFailure(addFailure(state, 'b', 'down'), 'c', 'down'))).toBe('unmet');
  // A group is capped at the members asked of it.
  const capped = startJointQuorum<string>(['a'], [{ members: ['a', 'x'], needed: 2 }]);
  expect(verdict(addSuccess(capped, 'a', 'ok'))).toBe('met');
});
