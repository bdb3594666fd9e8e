/**
 * Shape checks for what arrives from a peer, run on every decoded frame before any of it is
 * used: a peer is another process, so its bytes are input, not trusted values. Each check
 * returns a sentence naming the first problem it finds, or undefined when the value has the
 * shape its type promises. Fields a newer node adds are ignored, so nodes one version apart can
 * still talk; a `type` this node does not know is a problem.
 */
import type { RpcReply, RpcRequest } from './messages';

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
const isSafeInteger: Check = (value, path) =>
  typeof value === 'number' && Number.isSafeInteger(value) ? undefined : `${path} is not an integer`;
const isNonNegativeInteger: Check = (value, path) =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? undefined : `${path} is not a non-negative integer`;
const isUint32: Check = (value, path) =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff
    ? undefined
    : `${path} is not a 32-bit unsigned integer`;
const isFiniteNumber: Check = (value, path) =>
  typeof value === 'number' && Number.isFinite(value) ? undefined : `${path} is not a finite number`;
const isDecimal: Check = (value, path) =>
  typeof value === 'string' && /^[0-9]{1,20}$/.test(value) ? undefined : `${path} is not a decimal string`;

function oneOf(allowed: readonly string[]): Check {
  return (value, path) =>
    typeof value === 'string' && allowed.includes(value) ? undefined : `${path} is not one of ${allowed.join(', ')}`;
}

function arrayOf(item: Check): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return `${path} is not an array`;
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

const wireVersion = record(
  {
    clock: arrayOf(tuple([isString, isNonNegativeInteger, isSafeInteger])),
    value: isBuffer,
    flags: isUint32,
    expiresAtMs: isSafeInteger,
    tombstone: isBoolean,
    writtenAtMs: isSafeInteger,
    // Its fields are checked with the version's invariants (coordinator/wire.ts).
    counter: anything,
  },
  ['counter'],
);

const wireDigest = record({ clock: arrayOf(tuple([isString, isNonNegativeInteger, isSafeInteger])), writtenAtMs: isSafeInteger });

const wireMember = record({
  id: isString,
  address: isString,
  zone: isString,
  weight: isFiniteNumber,
  status: oneOf(['up', 'down', 'leaving']),
  incarnation: isNonNegativeInteger,
  heartbeat: isNonNegativeInteger,
});

const mutation = union('kind', {
  store: record({
    mode: oneOf(['set', 'add', 'replace', 'append', 'prepend', 'cas']),
    value: isBuffer,
    flags: isUint32,
    expiresAtMs: isSafeInteger,
    casUnique: isDecimal,
  }),
  delete: record({ casUnique: isDecimal }),
  touch: record({ expiresAtMs: isSafeInteger }),
  arith: record(
    {
      incr: isBoolean,
      delta: isDecimal,
      casUnique: isDecimal,
      initial: record({ value: isDecimal, expiresAtMs: isSafeInteger }),
    },
    ['initial'],
  ),
});

const wireItem = record({ key: isBuffer, bucket: isNonNegativeInteger, versions: arrayOf(wireVersion) });
const wireStoreItem = record({ key: isBuffer, bucket: isNonNegativeInteger, versions: arrayOf(wireVersion), hintFor: isString }, ['hintFor']);

const hintCount = record({ target: isString, count: isNonNegativeInteger, bytes: isNonNegativeInteger });

const requestShape = union('type', {
  replicaFetch: record({ key: isBuffer }),
  replicaStore: record({ key: isBuffer, bucket: isNonNegativeInteger, versions: arrayOf(wireVersion), hintFor: isString }, ['hintFor']),
  storeMany: record({ items: arrayOf(wireStoreItem), ifHeld: isBoolean }, ['ifHeld']),
  fetchMany: record({ keys: arrayOf(isBuffer) }),
  digestMany: record({ keys: arrayOf(isBuffer) }),
  treeRoots: record({ buckets: arrayOf(isNonNegativeInteger) }),
  treeNodes: record({ bucket: isNonNegativeInteger, level: isNonNegativeInteger, indexes: arrayOf(isNonNegativeInteger) }),
  segmentKeys: record({ bucket: isNonNegativeInteger, segments: arrayOf(isNonNegativeInteger) }),
  coordinate: record({ key: isBuffer, mutation }),
  flushAll: record({ deadlineMs: isSafeInteger }),
  // The ring state is checked by its own rules (src/claimant/wire.ts).
  gossip: record({ members: arrayOf(wireMember), layout: ringLayout, ring: anything }, ['layout', 'ring']),
  nodeInfo: record({}),
  bucketPage: record({ bucket: isNonNegativeInteger, afterKey: isBuffer, limit: isNonNegativeInteger }),
  ringChange: record({ change: ringChange }),
  addSeed: record({ address: isString }),
  probe: record({}),
});

const replyShape = union('type', {
  versions: record({ versions: arrayOf(wireVersion) }),
  versionsMany: record({ items: arrayOf(arrayOf(wireVersion)) }),
  digestsMany: record({ items: arrayOf(arrayOf(wireDigest)) }),
  treeHashes: record({ hashes: arrayOf(isNonNegativeInteger) }),
  segmentKeys: record({ segments: arrayOf(isNonNegativeInteger), keys: arrayOf(isBuffer), hashes: arrayOf(isNonNegativeInteger) }),
  stored: record({}),
  flushed: record({}),
  probed: record({}),
  coordinated: record(
    { result: anything, versions: arrayOf(wireVersion), written: nullable(wireVersion), acknowledgedBy: arrayOf(isString) },
    ['acknowledgedBy'],
  ),
  gossip: record({ members: arrayOf(wireMember), layout: ringLayout, ring: anything }, ['layout', 'ring']),
  bucketPage: record({ items: arrayOf(wireItem), more: isBoolean }),
  nodeInfo: record(
    {
      id: isString,
      members: arrayOf(wireMember),
      buckets: isNonNegativeInteger,
      hints: arrayOf(hintCount),
      ring: anything,
      transfers: transferProgress,
      seeds: arrayOf(isString),
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
    },
    ['buckets', 'hints', 'ring', 'transfers', 'seeds', 'quorum', 'storage'],
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
