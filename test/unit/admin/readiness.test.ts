// The readiness decision: ready only when nothing fails, and the first failing reason in the order an operator mends them.
import { readinessOf, type ReadinessInputs } from '../../../src/admin/readiness';

const fine: ReadinessInputs = {
  stopping: false,
  storageFailure: undefined,
  joining: undefined,
  ringFounded: true,
  availability: { bucketsServed: 8, bucketsBelowR: 0, bucketsBelowW: 0, quorum: { n: 3, r: 2, w: 2 }, firstShort: undefined },
};
const short = { ...fine.availability, bucketsBelowR: 8, bucketsBelowW: 8, firstShort: { bucket: 3, replicasUp: 1 } };

test('ready when nothing fails', () => {
  expect(readinessOf(fine)).toEqual({ ready: true });
});

test('each failure names its reason', () => {
  expect(readinessOf({ ...fine, stopping: true })).toMatchObject({ ready: false, reason: 'stopping' });
  expect(readinessOf({ ...fine, storageFailure: 'disk gone' })).toEqual({ ready: false, reason: 'storage_failed', detail: 'storage failed: disk gone' });
  expect(readinessOf({ ...fine, joining: 'joining: waiting to hear from a:1' })).toEqual({
    ready: false,
    reason: 'joining',
    detail: 'joining: waiting to hear from a:1',
  });
  expect(readinessOf({ ...fine, ringFounded: false })).toMatchObject({ ready: false, reason: 'ring_not_founded' });
  expect(readinessOf({ ...fine, availability: short })).toEqual({
    ready: false,
    reason: 'quorum_unmet',
    detail: 'of 8 buckets this node serves, 8 have fewer than R=2 and 8 fewer than W=2 replicas up (bucket 3: 1 up of N=3)',
  });
});

test('the first reason wins: stopping, then storage, then joining, then the ring, then quorums', () => {
  const all: ReadinessInputs = { stopping: true, storageFailure: 'x', joining: 'y', ringFounded: false, availability: short };
  expect(readinessOf(all)).toMatchObject({ reason: 'stopping' });
  expect(readinessOf({ ...all, stopping: false })).toMatchObject({ reason: 'storage_failed' });
  expect(readinessOf({ ...all, stopping: false, storageFailure: undefined })).toMatchObject({ reason: 'joining' });
  expect(readinessOf({ ...all, stopping: false, storageFailure: undefined, joining: undefined })).toMatchObject({ reason: 'ring_not_founded' });
});
