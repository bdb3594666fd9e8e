// Every bounded value a peer sends is refused at the shape check when out of its bound, and taken within it.
import { requestProblem, replyProblem, timeMsMax, wireKeysMax, wireVersionsMax } from '../../../src/rpc/message-shapes';
import type { WireMember, WireVersion } from '../../../src/rpc/messages';
import { heartbeatMax, incarnationMax, memberIdLengthMax, memberWeightMax, wireMembersMax } from '../../../src/membership';
import { clockCounterMax, clockNodeLengthMax, defaultPruneLimits } from '../../../src/vclock';

const nowMs = 1_700_000_000_000;

function version(overrides: Partial<WireVersion> = {}): WireVersion {
  return { clock: [['n1~a', 5, nowMs]], value: Buffer.from('v'), flags: 0, expiresAtMs: 0, tombstone: false, writtenAtMs: nowMs, ...overrides };
}

function store(versions: readonly WireVersion[]): unknown {
  return { type: 'replicaStore', key: Buffer.from('k'), bucket: 0, versions };
}

function member(overrides: Partial<WireMember> = {}): WireMember {
  return { id: '127.0.0.1:7001', address: '127.0.0.1:7001', zone: '', weight: 1, status: 'up', incarnation: 0, heartbeat: 0, ...overrides };
}

function gossip(members: readonly unknown[]): unknown {
  return { type: 'gossip', members };
}

// A clock counter, its writer's name and its time, each at its bound and one past it.
test('clock entries within their bounds', () => {
  expect(requestProblem(store([version({ clock: [['n1~a', clockCounterMax, nowMs]] })]))).toBeUndefined();
  expect(requestProblem(store([version({ clock: [['n1~a', clockCounterMax + 1, nowMs]] })]))).toMatch(/clock\[0\]\[1\]/);
  // The measured poison: 2^53 - 1.
  expect(requestProblem(store([version({ clock: [['n1~a', Number.MAX_SAFE_INTEGER, nowMs]] })]))).toMatch(/clock\[0\]\[1\]/);
  expect(requestProblem(store([version({ clock: [['n1~a', 0, nowMs]] })]))).toMatch(/clock\[0\]\[1\]/);
  expect(requestProblem(store([version({ clock: [['x'.repeat(clockNodeLengthMax), 1, nowMs]] })]))).toBeUndefined();
  expect(requestProblem(store([version({ clock: [['x'.repeat(clockNodeLengthMax + 1), 1, nowMs]] })]))).toMatch(/clock\[0\]\[0\]/);
  expect(requestProblem(store([version({ clock: [['', 1, nowMs]] })]))).toMatch(/clock\[0\]\[0\]/);
  expect(requestProblem(store([version({ clock: [['n1~a', 1, timeMsMax + 1]] })]))).toMatch(/clock\[0\]\[2\]/);
  expect(requestProblem(store([version({ clock: [['n1~a', 1, -1]] })]))).toMatch(/clock\[0\]\[2\]/);
  const entries = (count: number) => Array.from({ length: count }, (_, index) => [`n${index}`, 1, nowMs] as const);
  expect(requestProblem(store([version({ clock: entries(defaultPruneLimits.entriesMax) })]))).toBeUndefined();
  expect(requestProblem(store([version({ clock: entries(defaultPruneLimits.entriesMax + 1) })]))).toMatch(/over 50 items/);
});

// Write times, expiries and flush deadlines are instants within timeMsMax, never negative.
test('times within timeMsMax', () => {
  expect(requestProblem(store([version({ writtenAtMs: timeMsMax })]))).toBeUndefined();
  expect(requestProblem(store([version({ writtenAtMs: timeMsMax + 1 })]))).toMatch(/writtenAtMs/);
  expect(requestProblem(store([version({ writtenAtMs: Number.MAX_SAFE_INTEGER })]))).toMatch(/writtenAtMs/);
  expect(requestProblem(store([version({ expiresAtMs: -1 })]))).toMatch(/expiresAtMs/);
  expect(requestProblem({ type: 'flushAll', deadlineMs: timeMsMax + 1 })).toMatch(/deadlineMs/);
  expect(requestProblem({ type: 'flushAll', deadlineMs: 0 })).toBeUndefined();
  const touch = (expiresAtMs: number) => ({ type: 'coordinate', key: Buffer.from('k'), mutation: { kind: 'touch', expiresAtMs } });
  expect(requestProblem(touch(timeMsMax))).toBeUndefined();
  expect(requestProblem(touch(timeMsMax + 1))).toMatch(/expiresAtMs/);
});

// Lists are measured before their items are: versions per key, keys per batch, members per list.
test('list lengths within their bounds', () => {
  expect(requestProblem(store(Array.from({ length: wireVersionsMax }, () => version())))).toBeUndefined();
  expect(requestProblem(store(Array.from({ length: wireVersionsMax + 1 }, () => version())))).toMatch(/versions has over/);
  const keys = (count: number) => Array.from({ length: count }, (_, index) => Buffer.from(`k${index}`));
  expect(requestProblem({ type: 'fetchMany', keys: keys(wireKeysMax) })).toBeUndefined();
  expect(requestProblem({ type: 'fetchMany', keys: keys(wireKeysMax + 1) })).toMatch(/keys has over/);
  expect(requestProblem({ type: 'digestMany', keys: keys(wireKeysMax + 1) })).toMatch(/keys has over/);
  expect(replyProblem({ type: 'versionsMany', items: Array.from({ length: wireKeysMax + 1 }, () => []) })).toMatch(/items has over/);
  const members = (count: number) => Array.from({ length: count }, (_, index) => member({ id: `127.0.0.1:${index + 1}`, address: `127.0.0.1:${index + 1}` }));
  expect(requestProblem(gossip(members(wireMembersMax)))).toBeUndefined();
  expect(requestProblem(gossip(members(wireMembersMax + 1)))).toMatch(/members has over/);
});

// Incarnations, heartbeats and weights: the measured attack sent "leaving" at incarnation 2^53 - 1.
test('member entries within their bounds', () => {
  expect(requestProblem(gossip([member({ incarnation: incarnationMax, heartbeat: heartbeatMax })]))).toBeUndefined();
  expect(requestProblem(gossip([member({ incarnation: incarnationMax + 1 })]))).toMatch(/incarnation/);
  expect(requestProblem(gossip([member({ status: 'leaving', incarnation: Number.MAX_SAFE_INTEGER })]))).toMatch(/incarnation/);
  expect(requestProblem(gossip([member({ heartbeat: heartbeatMax + 1 })]))).toMatch(/heartbeat/);
  expect(requestProblem(gossip([member({ weight: memberWeightMax })]))).toBeUndefined();
  expect(requestProblem(gossip([member({ weight: memberWeightMax + 1 })]))).toMatch(/weight/);
  expect(requestProblem(gossip([member({ weight: 0 })]))).toMatch(/weight/);
  expect(requestProblem(gossip([member({ id: 'x'.repeat(memberIdLengthMax + 1) })]))).toMatch(/id/);
  expect(requestProblem(gossip([member({ id: '' })]))).toMatch(/id/);
  expect(requestProblem({ type: 'addSeed', address: 'h'.repeat(memberIdLengthMax + 1) })).toMatch(/address/);
  expect(replyProblem({ type: 'nodeInfo', id: 'a:1', members: [member({ incarnation: -1 })] })).toMatch(/incarnation/);
});

// Keys are what a client may name: 1 to 250 bytes; a bucket page may start from the empty key.
test('keys within memcached bounds', () => {
  expect(requestProblem({ type: 'replicaFetch', key: Buffer.alloc(250, 'k') })).toBeUndefined();
  expect(requestProblem({ type: 'replicaFetch', key: Buffer.alloc(251, 'k') })).toMatch(/key is not a key/);
  expect(requestProblem({ type: 'replicaFetch', key: Buffer.alloc(0) })).toMatch(/key is not a key/);
  expect(requestProblem({ type: 'fetchMany', keys: [Buffer.from('a'), Buffer.alloc(300)] })).toMatch(/keys\[1\]/);
  expect(requestProblem({ type: 'bucketPage', bucket: 0, afterKey: Buffer.alloc(0), limit: 10 })).toBeUndefined();
  expect(requestProblem({ type: 'bucketPage', bucket: 0, afterKey: Buffer.alloc(251), limit: 10 })).toMatch(/afterKey/);
});
