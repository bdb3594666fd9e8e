// The quorum availability rule behind /ready: which buckets a node serves and which fall short of R or W, for who is up.
import { quorumAvailability } from '../../../src/quorum/availability';
import { buildRing, preferenceList } from '../../../src/ring';

const buckets = 256;
const members = (count: number) => Array.from({ length: count }, (_, index) => ({ id: `n${index + 1}`, weight: 1 }));
const quorum = { n: 3, r: 2, w: 2 };

test('three nodes all up: each serves every bucket, none short', () => {
  const ring = buildRing(members(3), { buckets });
  expect(quorumAvailability(ring, quorum, 'n1', () => true)).toEqual({
    bucketsServed: buckets,
    bucketsBelowR: 0,
    bucketsBelowW: 0,
    quorum,
    firstShort: undefined,
  });
});

test('three nodes, two down: every bucket the survivor serves has 1 replica up, short of R and W', () => {
  const ring = buildRing(members(3), { buckets });
  const availability = quorumAvailability(ring, quorum, 'n1', (id) => id === 'n1');
  expect(availability).toMatchObject({ bucketsServed: buckets, bucketsBelowR: buckets, bucketsBelowW: buckets });
  expect(availability.firstShort).toEqual({ bucket: 0, replicasUp: 1 });
});

test('three nodes, one down: two replicas up meet R=2 and W=2', () => {
  const ring = buildRing(members(3), { buckets });
  expect(quorumAvailability(ring, quorum, 'n1', (id) => id !== 'n3').firstShort).toBeUndefined();
});

test('R and W counted apart: W=3 falls short where R=2 does not', () => {
  const ring = buildRing(members(3), { buckets });
  const availability = quorumAvailability(ring, { n: 3, r: 2, w: 3 }, 'n1', (id) => id !== 'n3');
  expect(availability).toMatchObject({ bucketsBelowR: 0, bucketsBelowW: buckets });
});

test('five nodes, two down: fallbacks stand in (sloppy quorum), and a node serves only its own buckets', () => {
  const ring = buildRing(members(5), { buckets });
  const up = (id: string) => id !== 'n4' && id !== 'n5';
  const availability = quorumAvailability(ring, quorum, 'n1', up);
  const own = Array.from({ length: buckets }, (_, bucket) => bucket).filter((bucket) => preferenceList(ring, bucket, 3).includes('n1'));
  expect(availability.bucketsServed).toBe(own.length);
  expect(availability.bucketsServed).toBeLessThan(buckets);
  expect(availability.firstShort).toBeUndefined();
});

test('a node outside the ring serves every bucket: it forwards whatever it is asked', () => {
  const ring = buildRing(members(3), { buckets });
  expect(quorumAvailability(ring, quorum, 'joiner', () => true).bucketsServed).toBe(buckets);
});

test('a ring smaller than N caps N, R and W at its size, as the coordinator does', () => {
  const ring = buildRing(members(1), { buckets });
  const availability = quorumAvailability(ring, quorum, 'n1', () => true);
  expect(availability.quorum).toEqual({ n: 1, r: 1, w: 1 });
  expect(availability.firstShort).toBeUndefined();
});
