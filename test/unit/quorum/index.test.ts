import { addFailure, addSuccess, effectiveQuorum, startQuorum, verdict } from '../../../src/quorum';

// With 3 asked and 2 needed: pending until 2 succeed (met) or 2 fail (unmet).
test('verdicts for 2 of 3', () => {
  let state = startQuorum<string>(3, 2);
  expect(verdict(state)).toBe('pending');
  state = addSuccess(state, 'a');
  expect(verdict(state)).toBe('pending');
  state = addFailure(state, 'b down');
  expect(verdict(state)).toBe('pending');
  state = addSuccess(state, 'c');
  expect(verdict(state)).toBe('met');
  expect(state.successes).toEqual(['a', 'c']);
  expect(state.failures).toEqual(['b down']);

  let failing = startQuorum<string>(3, 2);
  failing = addFailure(failing, 'x');
  expect(verdict(failing)).toBe('pending');
  failing = addFailure(failing, 'y');
  expect(verdict(failing)).toBe('unmet');
});

// Once met, later failures do not undo the verdict.
test('met stays met', () => {
  let state = startQuorum<number>(3, 1);
  state = addSuccess(state, 1);
  state = addFailure(addFailure(state, 'x'), 'y');
  expect(verdict(state)).toBe('met');
});

// The states are values: adding to one leaves the earlier state unchanged.
test('states are immutable', () => {
  const start = startQuorum<number>(2, 2);
  const next = addSuccess(start, 7);
  expect(start.successes).toEqual([]);
  expect(next.successes).toEqual([7]);
  expect(addFailure(start, 'e').failures).toEqual(['e']);
  expect(start.failures).toEqual([]);
});

// Needing nothing is met at once; needing more than asked is capped at asked.
test('edge quorums', () => {
  expect(verdict(startQuorum(2, 0))).toBe('met');
  expect(verdict(startQuorum(0, 0))).toBe('met');
  const capped = startQuorum<number>(2, 5);
  expect(capped.needed).toBe(2);
  expect(verdict(addSuccess(addSuccess(capped, 1), 2))).toBe('met');
  expect(verdict(addFailure(capped, 'e'))).toBe('unmet');
  // Every one of the asked must answer when all are needed.
  expect(verdict(addSuccess(startQuorum<number>(3, 3), 1))).toBe('pending');
});

// N is capped at the ring size, and R and W at N.
test('effectiveQuorum caps', () => {
  expect(effectiveQuorum({ n: 3, r: 2, w: 2 }, 5)).toEqual({ n: 3, r: 2, w: 2 });
  expect(effectiveQuorum({ n: 3, r: 2, w: 2 }, 3)).toEqual({ n: 3, r: 2, w: 2 });
  expect(effectiveQuorum({ n: 3, r: 2, w: 2 }, 1)).toEqual({ n: 1, r: 1, w: 1 });
  expect(effectiveQuorum({ n: 3, r: 3, w: 1 }, 2)).toEqual({ n: 2, r: 2, w: 1 });
  expect(effectiveQuorum({ n: 5, r: 7, w: 9 }, 10)).toEqual({ n: 5, r: 5, w: 5 });
});
