/**
 * What a decoded binary request asks for, and the packets that answer it: pure functions between
 * the binary framing and the command model shared with the text protocol. The connection adds
 * only what needs its state (authentication) and the socket.
 */
import type { KaiError } from '../../errors';
import type { Command, Reply, StorageMode } from '../command';
import { arithNoCreateExpiration, BinaryStatus, loudOpcodeOf, Opcode } from './constants';
import type { BinaryRequest } from './decoder';
import { counterValue, encodeErrorResponse, encodeResponse, encodeStats, flagsExtras } from './encoder';
import { linesThenEnd } from '../text/encoder';

export type BinaryAction =
  | { readonly kind: 'command'; readonly command: Command }
  | { readonly kind: 'noop' }
  | { readonly kind: 'quit' }
  | { readonly kind: 'saslListMechanisms' }
  | { readonly kind: 'saslAuth'; readonly mechanism: string; readonly message: Buffer }
  | { readonly kind: 'saslStep' };

/** The opcode a quiet opcode is a variant of; a loud opcode itself. */
export function loudOpcode(opcode: number): number {
  return loudOpcodeOf.get(opcode) ?? opcode;
}

/** Quiet variants answer only errors (and get hits); GETQ and GETKQ stay silent on a miss too. */
export function isQuiet(opcode: number): boolean {
  return loudOpcodeOf.has(opcode);
}

const storageModes: ReadonlyMap<number, StorageMode> = new Map<number, StorageMode>([
  [Opcode.set, 'set'],
  [Opcode.add, 'add'],
  [Opcode.replace, 'replace'],
  [Opcode.append, 'append'],
  [Opcode.prepend, 'prepend'],
]);

/**
 * The action a request asks for. The decoder has already checked the header against the
 * opcode's rules, so the extras have the length each case reads.
 */
export function actionOf(request: BinaryRequest): BinaryAction {
  const { header, extras, key, value } = request;
  const opcode = loudOpcode(header.opcode);
  const noreply = isQuiet(header.opcode);
  const command = (built: Command): BinaryAction => ({ kind: 'command', command: built });
  switch (opcode) {
    case Opcode.get:
    case Opcode.getk:
      // One value per reply: the sibling written last, with the context's cas (docs/protocol.md).
      return command({ op: 'get', keys: [key], withCas: true, latestSiblingOnly: true });
    case Opcode.touch:
    case Opcode.gat:
    case Opcode.gatk:
      return command({ op: 'gat', keys: [key], exptime: extras.readUInt32BE(0), withCas: true });
    case Opcode.set:
    case Opcode.add:
    case Opcode.replace:
      return command({
        op: 'store',
        mode: storageModes.get(opcode) ?? 'set',
        key,
        flags: extras.readUInt32BE(0),
        exptime: extras.readUInt32BE(4),
        value,
        casUnique: header.cas,
        noreply,
      });
    case Opcode.append:
    case Opcode.prepend:
      return command({
        op: 'store',
        mode: opcode === Opcode.append ? 'append' : 'prepend',
        key,
        flags: 0,
        exptime: 0,
        value,
        casUnique: header.cas,
        noreply,
      });
    case Opcode.delete:
      return command({ op: 'delete', key, casUnique: header.cas, noreply });
    case Opcode.increment:
    case Opcode.decrement:
      return command(arithCommand(request, opcode === Opcode.increment, noreply));
    case Opcode.flush:
      return command({ op: 'flush_all', delaySeconds: extras.length > 0 ? extras.readUInt32BE(0) : 0, noreply });
    case Opcode.verbosity:
      return command({ op: 'verbosity', level: extras.readUInt32BE(0), noreply: false });
    case Opcode.version:
      return command({ op: 'version' });
    case Opcode.stat:
      return command(statsCommandOf(key));
    case Opcode.noop:
      return { kind: 'noop' };
    case Opcode.quit:
      return { kind: 'quit' };
    case Opcode.saslListMechs:
      return { kind: 'saslListMechanisms' };
    case Opcode.saslAuth:
      return { kind: 'saslAuth', mechanism: key.toString('latin1'), message: value };
    default:
      return { kind: 'saslStep' };
  }
}

/** incr/decr extras: delta (8), initial value (8), expiration (4); 0xffffffff: do not create. */
function arithCommand(request: BinaryRequest, incr: boolean, noreply: boolean): Command {
  const { extras, key, header } = request;
  const expiration = extras.readUInt32BE(16);
  return {
    op: 'arith',
    incr,
    key,
    delta: extras.readBigUInt64BE(0),
    casUnique: header.cas,
    initial: expiration === arithNoCreateExpiration ? undefined : { value: extras.readBigUInt64BE(8), exptime: expiration },
    noreply,
  };
}

/** A success response to `request` with the given body parts. */
function success(request: BinaryRequest, fields: { cas?: bigint; extras?: Buffer; key?: Buffer; value?: Buffer } = {}): Buffer[] {
  return encodeResponse({ opcode: request.header.opcode, opaque: request.header.opaque, ...fields });
}

/** An error response to `request`, in memcached's words. */
export function errorPackets(request: BinaryRequest, status: number, message?: string): Buffer[] {
  return encodeErrorResponse(request.header.opcode, request.header.opaque, status, message);
}

/** A success a quiet request does not get. */
function quietSuccess(request: BinaryRequest, fields?: Parameters<typeof success>[1]): Buffer[] {
  return isQuiet(request.header.opcode) ? [] : success(request, fields);
}

/** The packets answering `request` with `reply`; empty when a quiet request succeeded. */
export function replyPackets(request: BinaryRequest, reply: Reply): Buffer[] {
  switch (reply.kind) {
    case 'items':
      return itemPackets(request, reply);
    case 'stored':
      return storedPackets(request, reply.outcome, reply.cas);
    case 'deleted':
      if (reply.outcome === 'DELETED') return quietSuccess(request);
      return errorPackets(request, reply.outcome === 'EXISTS' ? BinaryStatus.keyExists : BinaryStatus.keyNotFound);
    case 'arith':
      if (reply.outcome === 'OK') return quietSuccess(request, { cas: reply.cas, value: counterValue(reply.value) });
      return errorPackets(request, reply.outcome === 'EXISTS' ? BinaryStatus.keyExists : BinaryStatus.keyNotFound);
    case 'touched':
    case 'ok':
      return quietSuccess(request);
    case 'version':
      return success(request, { value: Buffer.from(reply.version, 'latin1') });
    case 'stats':
      return encodeStats(request.header.opcode, request.header.opaque, reply.stats);
    case 'reset':
      // `stats reset` answers the end-of-list packet alone, as memcached does.
      return encodeStats(request.header.opcode, request.header.opaque, []);
    case 'lines':
      // memcached sends the text as it would write it, END included, as one statistic's value.
      return encodeStats(request.header.opcode, request.header.opaque, [[reply.name, linesThenEnd(reply.lines)]]);
    case 'quit':
      return quietSuccess(request);
    default:
      // Meta commands are text commands: no binary request decodes to one.
      throw new Error(`assertion failed: a binary request answered ${reply.kind}`);
  }
}

/**
 * A get, getk, gat, gatk or touch: flags as extras, the key for the K variants, the value except
 * for touch, and the cas unique. A miss is not found (with the key for the K variants), or nothing
 * for the quiet variants.
 */
function itemPackets(request: BinaryRequest, reply: Extract<Reply, { kind: 'items' }>): Buffer[] {
  const opcode = loudOpcode(request.header.opcode);
  const withKey = opcode === Opcode.getk || opcode === Opcode.gatk;
  const item = reply.items[0];
  if (!item) {
    if (isQuiet(request.header.opcode)) return [];
    if (withKey) {
      const { header, key } = request;
      return encodeResponse({ opcode: header.opcode, opaque: header.opaque, status: BinaryStatus.keyNotFound, key });
    }
    return errorPackets(request, BinaryStatus.keyNotFound);
  }
  return success(request, {
    cas: item.cas,
    extras: flagsExtras(item.flags),
    key: withKey ? item.key : undefined,
    value: opcode === Opcode.touch ? undefined : item.value,
  });
}

/** memcached's statuses for a store: a refused add is "exists", a refused replace "not found". */
function storedPackets(request: BinaryRequest, outcome: Extract<Reply, { kind: 'stored' }>['outcome'], cas: bigint): Buffer[] {
  switch (outcome) {
    case 'STORED':
      return quietSuccess(request, { cas });
    case 'EXISTS':
      return errorPackets(request, BinaryStatus.keyExists);
    case 'NOT_FOUND':
      return errorPackets(request, BinaryStatus.keyNotFound);
    case 'NOT_STORED': {
      const opcode = loudOpcode(request.header.opcode);
      if (opcode === Opcode.add) return errorPackets(request, BinaryStatus.keyExists);
      if (opcode === Opcode.replace) return errorPackets(request, BinaryStatus.keyNotFound);
      return errorPackets(request, BinaryStatus.itemNotStored);
    }
  }
}

/**
 * An operating error as a response. A stats group kai does not keep is "not found", as memcached
 * answers an unknown group; statuses memcached has no words for carry kai's own message.
 */
export function failurePackets(request: BinaryRequest, error: KaiError): Buffer[] {
  const statsRefusal = error.code === 'KAI_UNKNOWN_COMMAND' || error.code === 'KAI_STATS_DETAIL_USAGE';
  if (statsRefusal && loudOpcode(request.header.opcode) === Opcode.stat) {
    return errorPackets(request, BinaryStatus.keyNotFound);
  }
  // An append or prepend that would outgrow the item limit is "not stored" in memcached's binary
  // protocol, where the text protocol says out of memory.
  if (error.code === 'KAI_OUT_OF_MEMORY_STORING') return errorPackets(request, BinaryStatus.itemNotStored);
  return errorPackets(request, error.binaryStatus(), error.textReply());
}

/** The response to SASL_LIST_MECHS: the mechanisms, space-separated. */
export function mechanismsPackets(request: BinaryRequest, mechanisms: string): Buffer[] {
  return success(request, { value: Buffer.from(mechanisms, 'latin1') });
}

/** The response to a successful SASL_AUTH. */
export function authenticatedPackets(request: BinaryRequest, message: string): Buffer[] {
  return success(request, { value: Buffer.from(message, 'latin1') });
}

/** The response to NOOP and QUIT (QUITQ gets none). */
export function emptySuccessPackets(request: BinaryRequest): Buffer[] {
  return quietSuccess(request);
}

const detailGroup = 'detail';

/**
 * A STAT request's group is its key. `detail on|off|dump` carries its word after a space, and
 * memcached matches only the start of it (`detail onward` turns detail on); any other word is
 * the usage error the dispatcher answers.
 */
function statsCommandOf(key: Buffer): Command {
  const group = key.toString('latin1');
  if (!group.startsWith(detailGroup)) return { op: 'stats', group };
  const word = /^ (on|off|dump)/.exec(group.slice(detailGroup.length))?.[1];
  return { op: 'stats', group: detailGroup, args: word === undefined ? [] : [word] };
}
