/**
 * Shape checks for what arrives from a peer, run on every decoded frame before any of it is
 * used: a peer is another process, so its bytes are input, not trusted values. Each check
 * returns a sentence naming the first problem it finds, or undefined when the value has the
 * shape its type promises. Fields a newer node adds are ignored, so nodes one version apart can
 * still talk; a `type` this node does not know is a problem.
 */
import { heartbeatMax, incarnationMax, memberIdLengthMax, memberWeightMax, wireMembersMax, zoneLengthMax } from '../membership';
import { keyBytesMax } from '../protocol/command';
import { clockCounterMax, clockNodeLengthMax, defaultPruneLimits } from '../vclock';
import { versionMarksAll } from '../storage/record';
import type { RpcReply, RpcRequest } from './messages';

/**
 * The latest instant (unix ms) any time a peer sends may name: a write time, a clock entry's
 * stamp, an expiry, a flush deadline. memcached's latest expiry is 2^32 s (2106); 2^47 ms is the
 * year 6429, so no honest value comes near it, and adding a day or a counter's step to one never
 * leaves the exact integers.
 */
export const timeMsMax = 2 ** 47;
/**
 * Entries of a list a peer sends that has no tighter bound of its own (buckets, tree indexes,
 * segment numbers, hashes): the ring's largest bucket count (ring bucketsMax, 2^20).
 */
export const wireListLengthMax = 1 << 20;
/** Keys one batch names (fetchMany, digestMany, storeMany, a bucket page): the senders cut theirs at 1000. */
export const wireKeysMax = 1000;
/** Versions one key carries: a replica's siblings at their highest cap (coordinator/siblings.ts), plus the write. */
export const wireVersionsMax = 1001;
/** An mg carries at most one each of T, N and R. */
const fetchStepsMax = 3;

/** The first problem found, or undefined when there is none. */
export type ShapeProblem = string | undefined;

type Check = (value: unknown, path: string) => ShapeProblem;

type Fields = Readonly<Record<string, unknown>>;

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

const isString: Check = (value, path) => (typeof value === 'string' ? undefined : `${path} is not a string`);
const isBoolean: Check = (value, path) => (typeof value === 'boolean' ? undefined : `${path} is not a boolean`);
const isBuffer: Check = (value, path) => (Buffer.isBuffer(value) ? undefined : `${path} is not bytes`);
const isNonNegativeInteger: Check = (value, path) =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? undefined : `${path} is not a non-negative integer`;
const isUint32: Check = (value, path) =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff
    ? undefined
    : `${path} is not a 32-bit unsigned integer`;
/** An integer from `min` to `max`, both included. */
function integerIn(min: number, max: number): Check {
  return (value, path) =>
    typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max
      ? undefined
      : `${path} is not an integer from ${min} to ${max}`;
}
/** A key as clients may name one: memcached's 1 to 250 bytes. */
const isKey: Check = (value, path) =>
  Buffer.isBuffer(value) && value.length > 0 && value.length <= keyBytesMax ? undefined : `${path} is not a key of 1 to ${keyBytesMax} bytes`;
/** Where a bucket page starts: after a key, or from the start (empty). */
const isKeyOrStart: Check = (value, path) =>
  Buffer.isBuffer(value) && value.length <= keyBytesMax ? undefined : `${path} is not at most ${keyBytesMax} bytes`;
/** An instant in unix ms, 0 included (no expiry, no flush delay). */
const isTimeMs = integerIn(0, timeMsMax);
function stringOfLength(min: number, max: number): Check {
  return (value, path) =>
    typeof value === 'string' && value.length >= min && value.length <= max ? undefined : `${path} is not a string of ${min} to ${max} characters`;
}
const isDecimal: Check = (value, path) =>
  typeof value === 'string' && /^[0-9]{1,20}$/.test(value) ? undefined : `${path} is not a decimal string`;

function oneOf(allowed: readonly string[]): Check {
  return (value, path) =>
    typeof value === 'string' && allowed.includes(value) ? undefined : `${path} is not one of ${allowed.join(', ')}`;
}

/** A list of at most `lengthMax` items, each passing `item`: the length is checked before any item. */
function arrayOf(item: Check, lengthMax: number = wireListLengthMax): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return `${path} is not an array`;
    if (value.length > lengthMax) return `${path} has over ${lengthMax} items`;
    for (let index = 0; index < value.length; index++) {
      const problem = item(value[index], `${path}[${index}]`);
      if (problem) return problem;
    }
    return undefined;
  };
}

function tuple(items: readonly Check[]): Check {
  return (value, path) => {
    if (!Array.isArray(value) || value.length !== items.length) return `${path} is not a ${items.length}-tuple`;
    return firstProblem(items.map((check, index) => () => check(value[index], `${path}[${index}]`)));
  };
}

/** An object whose listed fields pass their checks; fields marked optional may be absent. */
function record(fields: Readonly<Record<string, Check>>, optional: readonly string[] = []): Check {
  return (value, path) => {
    if (!isFields(value)) return `${path} is not a map`;
    for (const [name, check] of Object.entries(fields)) {
      const field = Object.hasOwn(value, name) ? value[name] : undefined;
      if (field === undefined && optional.includes(name)) continue;
      const problem = check(field, `${path}.${name}`);
      if (problem) return problem;
    }
    return undefined;
  };
}

function nullable(check: Check): Check {
  return (value, path) => (value === null ? undefined : check(value, path));
}

const anything: Check = () => undefined;

const ringLayout: Check = (value, path) => record({ buckets: isNonNegativeInteger })(value, path);

const ringChange = union('kind', {
  leave: record({}),
  remove: record({ member: isString }),
  replace: record({ old: isString, replacement: isString }),
});

const transferProgress = record(
  {
    version: isNonNegativeInteger,
    bucketsToReceive: isNonNegativeInteger,
    bucketsReceived: isNonNegativeInteger,
    keysMoved: isNonNegativeInteger,
    bytesMoved: isNonNegativeInteger,
    startedAtMs: isNonNegativeInteger,
    nowMs: isNonNegativeInteger,
    waiting: isString,
  },
  ['waiting'],
);

function firstProblem(checks: readonly (() => ShapeProblem)[]): ShapeProblem {
  for (const check of checks) {
    const problem = check();
    if (problem) return problem;
  }
  return undefined;
}

/** A union discriminated by the field `tag`: the variant's checks run on the whole object. */
function union(tag: string, variants: Readonly<Record<string, Check>>): Check {
  return (value, path) => {
    if (!isFields(value)) return `${path} is not a map`;
    const variant = Object.hasOwn(value, tag) ? value[tag] : undefined;
    if (typeof variant !== 'string' || !Object.hasOwn(variants, variant)) {
      return `${path}.${tag} ${String(variant)} is not known`;
    }
    return variants[variant](value, path);
  };
}

/**
 * A clock as versions and digests carry it: at most as many entries as pruning keeps, each a
 * named writer, a counter from 1 to clockCounterMax (so one more write never leaves the exact
 * integers) and a time within timeMsMax.
 */
const wireClock = arrayOf(
  tuple([stringOfLength(1, clockNodeLengthMax), integerIn(1, clockCounterMax), isTimeMs]),
  defaultPruneLimits.entriesMax,
);

const wireVersion = record(
  {
    clock: wireClock,
    value: isBuffer,
    flags: isUint32,
    expiresAtMs: isTimeMs,
    tombstone: isBoolean,
    writtenAtMs: isTimeMs,
    // Its fields are checked with the version's invariants (coordinator/wire.ts).
    counter: anything,
    marks: integerIn(1, versionMarksAll),
  },
  ['counter', 'marks'],
);

const wireDigest = record({ clock: wireClock, writtenAtMs: isTimeMs });

const isWeight: Check = (value, path) =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= memberWeightMax
    ? undefined
    : `${path} is not a weight above 0 and at most ${memberWeightMax}`;

/** A member's entry, within the membership's bounds (src/membership checks the rest: the address). */
const wireMember = record({
  id: stringOfLength(1, memberIdLengthMax),
  address: stringOfLength(1, memberIdLengthMax),
  zone: stringOfLength(0, zoneLengthMax),
  weight: isWeight,
  status: oneOf(['up', 'down', 'leaving']),
  incarnation: integerIn(0, incarnationMax),
  heartbeat: integerIn(0, heartbeatMax),
});
const wireMembers = arrayOf(wireMember, wireMembersMax);

const mutation = union('kind', {
  store: record({
    mode: oneOf(['set', 'add', 'replace', 'append', 'prepend', 'cas']),
    value: isBuffer,
    flags: isUint32,
    expiresAtMs: isTimeMs,
    casUnique: isDecimal,
    invalidate: isBoolean,
    keyBase64: isBoolean,
  }, ['invalidate', 'keyBase64']),
  delete: record({ casUnique: isDecimal, invalidate: isBoolean, expiresAtMs: isTimeMs }, ['invalidate', 'expiresAtMs']),
  touch: record({ expiresAtMs: isTimeMs }),
  arith: record(
    {
      incr: isBoolean,
      delta: isDecimal,
      casUnique: isDecimal,
      initial: record({ value: isDecimal, expiresAtMs: isTimeMs }),
      expiresAtMs: isTimeMs,
    },
    ['initial', 'expiresAtMs'],
  ),
  fetch: record({ steps: arrayOf(tuple([oneOf(['T', 'N', 'R']), isTimeMs]), fetchStepsMax), withoutClaim: isBoolean }, ['withoutClaim']),
});

const wireVersions = arrayOf(wireVersion, wireVersionsMax);
const wireItem = record({ key: isKey, bucket: isNonNegativeInteger, versions: wireVersions });
const wireStoreItem = record({ key: isKey, bucket: isNonNegativeInteger, versions: wireVersions, hintFor: isString }, ['hintFor']);
const wireKeys = arrayOf(isKey, wireKeysMax);

const hintCount = record({ target: isString, count: isNonNegativeInteger, bytes: isNonNegativeInteger });

/** A located key's lists: the ring's, and the next ring's while its bucket moves. */
const locatedListsMax = 2;
const memberIds = arrayOf(stringOfLength(1, memberIdLengthMax), wireMembersMax);
const locatedList = record({
  ring: oneOf(['current', 'next']),
  reads: isBoolean,
  primaries: memberIds,
  targets: arrayOf(record({ node: stringOfLength(1, memberIdLengthMax), standsInFor: isString }, ['standsInFor']), wireMembersMax),
});
const versionSummary = record({
  clock: wireClock,
  writtenAtMs: isTimeMs,
  expiresAtMs: isTimeMs,
  tombstone: isBoolean,
  flags: isUint32,
  valueBytes: isNonNegativeInteger,
});
const locatedReplica = record(
  { node: stringOfLength(1, memberIdLengthMax), up: isBoolean, versions: arrayOf(versionSummary, wireVersionsMax), error: isString },
  ['versions', 'error'],
);

const requestShape = union('type', {
  replicaFetch: record({ key: isKey }),
  replicaStore: record({ key: isKey, bucket: isNonNegativeInteger, versions: wireVersions, hintFor: isString }, ['hintFor']),
  storeMany: record({ items: arrayOf(wireStoreItem, wireKeysMax), ifHeld: isBoolean }, ['ifHeld']),
  fetchMany: record({ keys: wireKeys }),
  digestMany: record({ keys: wireKeys }),
  treeRoots: record({ buckets: arrayOf(isNonNegativeInteger) }),
  treeNodes: record({ bucket: isNonNegativeInteger, level: isNonNegativeInteger, indexes: arrayOf(isNonNegativeInteger) }),
  segmentKeys: record({ bucket: isNonNegativeInteger, segments: arrayOf(isNonNegativeInteger) }),
  coordinate: record({ key: isKey, mutation }),
  flushAll: record({ deadlineMs: isTimeMs }),
  // The ring state is checked by its own rules (src/claimant/wire.ts).
  gossip: record({ members: wireMembers, layout: ringLayout, ring: anything }, ['layout', 'ring']),
  nodeInfo: record({}),
  bucketPage: record({ bucket: isNonNegativeInteger, afterKey: isKeyOrStart, limit: isNonNegativeInteger }),
  ringChange: record({ change: ringChange }),
  addSeed: record({ address: stringOfLength(1, memberIdLengthMax) }),
  locate: record({ key: isKey }),
  probe: record({}),
});

const replyShape = union('type', {
  versions: record({ versions: wireVersions }),
  versionsMany: record({ items: arrayOf(wireVersions, wireKeysMax) }),
  digestsMany: record({ items: arrayOf(arrayOf(wireDigest, wireVersionsMax), wireKeysMax) }),
  treeHashes: record({ hashes: arrayOf(isNonNegativeInteger) }),
  segmentKeys: record({ segments: arrayOf(isNonNegativeInteger), keys: arrayOf(isKey), hashes: arrayOf(isNonNegativeInteger) }),
  stored: record({}),
  flushed: record({}),
  probed: record({}),
  coordinated: record(
    { result: anything, versions: wireVersions, written: nullable(wireVersion), acknowledgedBy: arrayOf(isString, wireMembersMax) },
    ['acknowledgedBy'],
  ),
  gossip: record({ members: wireMembers, layout: ringLayout, ring: anything }, ['layout', 'ring']),
  bucketPage: record({ items: arrayOf(wireItem, wireKeysMax), more: isBoolean }),
  nodeInfo: record(
    {
      id: isString,
      members: wireMembers,
      buckets: isNonNegativeInteger,
      hints: arrayOf(hintCount),
      ring: anything,
      transfers: transferProgress,
      seeds: arrayOf(isString),
      unvouched: arrayOf(isString, wireMembersMax),
      quorum: record({ n: isNonNegativeInteger, r: isNonNegativeInteger, w: isNonNegativeInteger }),
      storage: record({
        state: oneOf(['ok', 'failed']),
        reason: isString,
        commitFailures: isNonNegativeInteger,
        operationsFailed: isNonNegativeInteger,
        diskFullFailures: isNonNegativeInteger,
        workerRestarts: isNonNegativeInteger,
        lastError: isString,
      }),
      refusing: isString,
    },
    ['buckets', 'hints', 'ring', 'transfers', 'seeds', 'unvouched', 'quorum', 'storage', 'refusing'],
  ),
  located: record(
    {
      bucket: isNonNegativeInteger,
      buckets: isNonNegativeInteger,
      quorum: record({ n: isNonNegativeInteger, r: isNonNegativeInteger, w: isNonNegativeInteger }),
      lists: arrayOf(locatedList, locatedListsMax),
      replicas: arrayOf(locatedReplica, wireMembersMax),
      refusing: isString,
    },
    ['refusing'],
  ),
  error: record({ code: isString, detail: isString }),
});

/** Why `value` is not an RpcRequest, or undefined when it is one. */
export function requestProblem(value: unknown): ShapeProblem {
  return requestShape(value, 'request');
}

/** Why `value` is not an RpcReply, or undefined when it is one. */
export function replyProblem(value: unknown): ShapeProblem {
  return replyShape(value, 'reply');
}

export function isRpcRequest(value: unknown): value is RpcRequest {
  return requestProblem(value) === undefined;
}

export function isRpcReply(value: unknown): value is RpcReply {
  return replyProblem(value) === undefined;
}
