/**
 * Meta command replies as the exact bytes memcached 1.6.18 writes: a two-letter status, then the
 * flags the request asked to have returned, in the request's order, then for VA the data block.
 * `T` and `N` act in that order too, so a `t` before them shows the TTL they replace.
 */
import { assert } from '../../errors';
import { encodeBase64Key } from '../base64';
import type { Command } from '../command';
import { expiresAtMsOf } from '../exptime';
import type { MetaArithRequest, MetaGetRequest, MetaItem, MetaReply, MetaRequest, MetaStatus } from '../meta-command';

const crlf = Buffer.from('\r\n');

function lineOf(text: string): Buffer {
  return Buffer.from(`${text}\r\n`, 'latin1');
}

/** A key as `k` returns it: base64 (followed by ` b`) for a key given in base64, else its bytes. */
function keyFlag(key: Buffer, base64: boolean): string {
  return base64 ? ` k${encodeBase64Key(key)} b` : ` k${key.toString('latin1')}`;
}

/** Seconds from now to the expiry, as memcached counts whole seconds; -1 for never. */
function ttlSeconds(expiresAtMs: number, nowMs: number): string {
  if (expiresAtMs === 0) return '-1';
  // memcached prints the difference as unsigned 32 bits, so a passed expiry wraps.
  return String((Math.floor(expiresAtMs / 1000) - Math.floor(nowMs / 1000)) >>> 0);
}

/**
 * The O and k flags, which every reply carries whatever its status, in request order; and for ms,
 * given `cas`, the c flag among them (the new cas unique, or 0 when nothing was stored).
 */
function echoFlags(request: MetaRequest, cas?: bigint): string {
  let text = '';
  for (const token of request.flags) {
    if (token[0] === 0x4f /* O */) text += ` ${token.toString('latin1')}`;
    else if (token[0] === 0x6b /* k */) text += keyFlag(request.key, request.keyBase64);
    else if (token[0] === 0x63 /* c */ && cas !== undefined) text += ` c${cas}`;
  }
  return text;
}

function statusLine(status: MetaStatus, request: MetaRequest): Buffer[] {
  return [lineOf(status + echoFlags(request))];
}

export function encodeMetaReply(command: Command, reply: MetaReply): Buffer[] {
  switch (reply.kind) {
    case 'meta_noop':
      return [lineOf('MN')];
    case 'meta_get':
      assert(command.op === 'meta_get', 'an mg reply answers mg');
      return metaGetReply(command.request, reply);
    case 'meta_set':
      assert(command.op === 'meta_set', 'an ms reply answers ms');
      if (reply.status === 'HD' && command.request.quiet) return [];
      return [lineOf(reply.status + echoFlags(command.request, reply.cas))];
    case 'meta_delete':
      assert(command.op === 'meta_delete', 'an md reply answers md');
      if (reply.status === 'HD' && command.request.quiet) return [];
      return statusLine(reply.status, command.request);
    case 'meta_arith':
      assert(command.op === 'meta_arith', 'an ma reply answers ma');
      return metaArithReply(command.request, reply);
    case 'meta_debug':
      return metaDebugReply(reply.item, reply.nowMs);
  }
}

function metaGetReply(request: MetaGetRequest, reply: Extract<MetaReply, { kind: 'meta_get' }>): Buffer[] {
  const { item, nowMs } = reply;
  if (!item) return request.quiet ? [] : statusLine('EN', request);
  let text = request.withValue ? `VA ${item.value.length}` : 'HD';
  let expiresAtMs = item.expiresAtMsBefore;
  for (const token of request.flags) {
    switch (String.fromCharCode(token[0])) {
      case 'T':
        expiresAtMs = expiresAtMsOf(request.touchExptime ?? 0, nowMs);
        break;
      case 'N':
        if (reply.created) expiresAtMs = expiresAtMsOf(request.vivifyExptime ?? 0, nowMs);
        break;
      case 's':
        text += ` s${item.value.length}`;
        break;
      case 't':
        text += ` t${ttlSeconds(expiresAtMs, nowMs)}`;
        break;
      case 'c':
        text += ` c${item.cas}`;
        break;
      case 'f':
        text += ` f${item.flags}`;
        break;
      case 'l':
        text += ` l${Math.max(0, Math.floor(nowMs / 1000) - Math.floor(item.lastAccessMs / 1000))}`;
        break;
      case 'h':
        text += ` h${item.fetchedBefore ? 1 : 0}`;
        break;
      case 'O':
        text += ` ${token.toString('latin1')}`;
        break;
      case 'k':
        text += keyFlag(item.key, item.keyBase64);
        break;
    }
  }
  // Z before X before W, and never W with Z: memcached's order.
  if (item.winTokenSentBefore) text += ' Z';
  if (item.stale) text += ' X';
  if (reply.won) text += ' W';
  const head = lineOf(text);
  return request.withValue ? [head, item.value, crlf] : [head];
}

function metaArithReply(request: MetaArithRequest, reply: Extract<MetaReply, { kind: 'meta_arith' }>): Buffer[] {
  if (reply.value === undefined) return statusLine(reply.status, request);
  // A quiet ma leaves out a successful reply, value and all, but not one that created the key.
  if (request.quiet && !reply.created) return [];
  const digits = reply.value.toString();
  let text = request.withValue ? `VA ${digits.length}` : 'HD';
  let expiresAtMs = reply.created ? 0 : reply.expiresAtMsBefore;
  for (const token of request.flags) {
    switch (String.fromCharCode(token[0])) {
      case 'c':
        text += ` c${reply.cas}`;
        break;
      case 't':
        text += ` t${ttlSeconds(expiresAtMs, reply.nowMs)}`;
        break;
      case 'T':
        expiresAtMs = expiresAtMsOf(request.exptime ?? 0, reply.nowMs);
        break;
      case 'N':
        if (reply.created) expiresAtMs = expiresAtMsOf(request.vivifyExptime ?? 0, reply.nowMs);
        break;
      case 'O':
        text += ` ${token.toString('latin1')}`;
        break;
      case 'k':
        text += keyFlag(request.key, request.keyBase64);
        break;
    }
  }
  return request.withValue ? [Buffer.from(`${text}\r\n${digits}\r\n`, 'latin1')] : [lineOf(text)];
}

/**
 * What memcached keeps about an item, for `me`: its expiry as memcached prints it (the time since
 * it, negative while it is ahead; -1 for never), seconds since last access, cas unique, whether
 * it was read, and the slab class and size memcached would give it (kai keeps no slabs: one class,
 * and memcached's item header counted in the size).
 */
function metaDebugReply(item: MetaItem | undefined, nowMs: number): Buffer[] {
  if (!item) return [lineOf('EN')];
  const nowSeconds = Math.floor(nowMs / 1000);
  const exp = item.expiresAtMsBefore === 0 ? -1 : nowSeconds - Math.floor(item.expiresAtMsBefore / 1000);
  const lastAccess = Math.max(0, nowSeconds - Math.floor(item.lastAccessMs / 1000));
  const key = item.keyBase64 ? encodeBase64Key(item.key) : item.key.toString('latin1');
  const size = itemHeaderBytes + item.key.length + 1 + (item.flags === 0 ? 0 : 4) + item.value.length + 2;
  return [lineOf(`ME ${key} exp=${exp} la=${lastAccess} cas=${item.cas} fetch=${item.fetchedBefore ? 'yes' : 'no'} cls=1 size=${size}`)];
}

/** memcached's item header with its cas: what `me` counts in an item's size beyond key and value. */
const itemHeaderBytes = 56;
