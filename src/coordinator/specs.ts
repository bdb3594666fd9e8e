/**
 * Writes described as data (MutationSpec, rpc/messages.ts), so that a node outside a key's
 * preference list can forward a write to one inside it. `mutationOf` turns a spec into the pure
 * mutation of mutations.ts, seen through the coordinating node's flush deadline, and adds what the
 * client's node needs to count memcached's statistics (the lookup). Results cross the internal API
 * as msgpack-safe values (bigints as decimal strings) and are checked when they come back.
 */
import { KaiError } from '../errors';
import type { ArithOutcome, DeleteOutcome, StoreOutcome } from '../protocol/command';
import { uint64Max } from '../protocol/numbers';
import type { MutationSpec } from '../rpc/messages';
import { timeMsMax } from '../rpc/message-shapes';
import { holdsOnlyExpired, versionMarksAll, type Version } from '../storage/record';
import { fetchMutation, type FetchedItem, type FetchResult, type FetchStep } from './meta-mutations';
import {
  arithMutation,
  deleteMutation,
  latestLive,
  storeMutation,
  touchMutation,
  type ArithRequest,
  type ArithResult,
  type Invalidation,
  type Mutation,
  type StoreRequest,
} from './mutations';

export type SpecKind = MutationSpec['kind'];
export type SpecOf<K extends SpecKind> = Extract<MutationSpec, { readonly kind: K }>;

/** What a touch found: the item as it was before the touch. */
export interface TouchedItem {
  readonly flags: number;
  readonly value: Buffer;
}

export interface SpecResults {
  readonly store: StoreOutcome;
  readonly delete: DeleteOutcome;
  readonly touch: TouchedItem | undefined;
  readonly arith: ArithResult;
  readonly fetch: FetchResult;
}

/** What the mutation found, as memcached's counters need it on the node the client talks to. */
export interface Lookup {
  /** The key holds no live value, only values that have expired: memcached's get_expired. */
  readonly expired: boolean;
  /** The bytes of the value the mutation started from (the live sibling written last), or -1. */
  readonly previousValueBytes: number;
}

export interface SpecOutcome<K extends SpecKind> {
  readonly result: SpecResults[K];
  readonly lookup: Lookup;
}

/** The versions a client may see at `nowMs`: the coordinating node's flush deadline filter. */
export type Visibility = (versions: readonly Version[], nowMs: number) => readonly Version[];

export const everythingVisible: Visibility = (versions) => versions;

// ---------------------------------------------------------------------------------------------
// Building specs from commands

const decimal = (value: bigint): string => value.toString();

export function storeSpec(request: StoreRequest): SpecOf<'store'> {
  return {
    kind: 'store',
    mode: request.mode,
    value: request.value,
    flags: request.flags,
    expiresAtMs: request.expiresAtMs,
    casUnique: decimal(request.casUnique),
    ...(request.invalidate ? { invalidate: true } : {}),
    ...(request.keyBase64 ? { keyBase64: true } : {}),
  };
}

export function deleteSpec(casUnique: bigint, invalidation?: Invalidation): SpecOf<'delete'> {
  const spec = { kind: 'delete' as const, casUnique: decimal(casUnique) };
  if (!invalidation) return spec;
  return invalidation.expiresAtMs === undefined
    ? { ...spec, invalidate: true }
    : { ...spec, invalidate: true, expiresAtMs: invalidation.expiresAtMs };
}

export function fetchSpec(steps: readonly FetchStep[], withoutClaim = false): SpecOf<'fetch'> {
  return withoutClaim ? { kind: 'fetch', steps, withoutClaim } : { kind: 'fetch', steps };
}

export function touchSpec(expiresAtMs: number): SpecOf<'touch'> {
  return { kind: 'touch', expiresAtMs };
}

export function arithSpec(request: ArithRequest): SpecOf<'arith'> {
  const spec = {
    kind: 'arith' as const,
    incr: request.incr,
    delta: decimal(request.delta),
    casUnique: decimal(request.casUnique ?? 0n),
  };
  const timed = request.expiresAtMs === undefined ? spec : { ...spec, expiresAtMs: request.expiresAtMs };
  return request.initial
    ? { ...timed, initial: { value: decimal(request.initial.value), expiresAtMs: request.initial.expiresAtMs } }
    : timed;
}

/** The cas unique a spec names; 0n when it names none (an unconditional write). */
export function casUniqueOf(spec: MutationSpec): bigint {
  return spec.kind === 'touch' || spec.kind === 'fetch' ? 0n : uint64Of(spec.casUnique, 'casUnique');
}

// ---------------------------------------------------------------------------------------------
// Specs to mutations

/** A decimal from a spec as a 64-bit unsigned number; a peer's bad one is KAI_BAD_FRAME. */
function uint64Of(text: string, field: string): bigint {
  const value = /^[0-9]{1,20}$/.test(text) ? BigInt(text) : -1n;
  if (value < 0n || value > uint64Max) throw new KaiError('KAI_BAD_FRAME', `${field} ${text} is not a 64-bit unsigned number`);
  return value;
}

function touchedItem(version: Version | undefined): TouchedItem | undefined {
  return version && { flags: version.flags, value: version.value };
}

/** The spec's mutation with its own result type, before the lookup is added. */
function baseMutation(spec: MutationSpec): Mutation<SpecResults[SpecKind]> {
  switch (spec.kind) {
    case 'store':
      return storeMutation({ ...spec, casUnique: uint64Of(spec.casUnique, 'casUnique') });
    case 'delete':
      return deleteMutation(
        uint64Of(spec.casUnique, 'casUnique'),
        spec.invalidate ? { expiresAtMs: spec.expiresAtMs } : undefined,
      );
    case 'fetch':
      return fetchMutation(spec.steps, spec.withoutClaim !== true);
    case 'touch': {
      const touch = touchMutation(spec.expiresAtMs);
      return (versions, context) => {
        const decision = touch(versions, context);
        return decision.error ? decision : { write: decision.write, result: touchedItem(decision.result) };
      };
    }
    case 'arith':
      return arithMutation({
        incr: spec.incr,
        delta: uint64Of(spec.delta, 'delta'),
        casUnique: uint64Of(spec.casUnique, 'casUnique'),
        initial: spec.initial && {
          value: uint64Of(spec.initial.value, 'initial value'),
          expiresAtMs: spec.initial.expiresAtMs,
        },
        expiresAtMs: spec.expiresAtMs,
      });
  }
}

/**
 * The mutation a spec describes, deciding on the versions `visible` leaves (the coordinating
 * node's flush deadline), with the lookup the client's node counts. Spec fields are checked
 * here, so a forwarded spec with an out-of-range number is refused before anything is written.
 */
export function mutationOf<K extends SpecKind>(
  spec: SpecOf<K>,
  visible: Visibility = everythingVisible,
): Mutation<SpecOutcome<K>> {
  const base = baseMutation(spec);
  return (held, context) => {
    const versions = visible(held, context.nowMs);
    const lookup: Lookup = {
      expired: holdsOnlyExpired(versions, context.nowMs),
      previousValueBytes: latestLive(versions, context.nowMs)?.value.length ?? -1,
    };
    const decision = base(versions, context);
    if (decision.error) return decision;
    // The spec's kind picks the result type, which TypeScript cannot follow through the switch.
    return { write: decision.write, result: { result: decision.result as SpecResults[K], lookup } };
  };
}

// ---------------------------------------------------------------------------------------------
// Outcomes across the internal API

type WireResult =
  | string
  | null
  | { readonly flags: number; readonly value: Buffer }
  | { readonly outcome: ArithOutcome; readonly value: string; readonly created: boolean; readonly previousExpiresAtMs: number }
  | {
      readonly item: FetchedItem | null;
      readonly created: boolean;
      readonly won: boolean;
    };

export interface WireOutcome {
  readonly result: WireResult;
  readonly lookup: Lookup;
}

export function outcomeToWire<K extends SpecKind>(kind: K, outcome: SpecOutcome<K>): WireOutcome {
  const result: SpecResults[SpecKind] = outcome.result;
  let wire: WireResult;
  if (kind === 'arith') {
    const arith = result as ArithResult;
    wire = { outcome: arith.outcome, value: decimal(arith.value), created: arith.created, previousExpiresAtMs: arith.previousExpiresAtMs };
  } else if (kind === 'fetch') {
    const fetched = result as FetchResult;
    wire = { item: fetched.item ?? null, created: fetched.created, won: fetched.won };
  } else if (kind === 'touch') {
    const touched = result as TouchedItem | undefined;
    wire = touched ? { flags: touched.flags, value: touched.value } : null;
  } else {
    wire = result as StoreOutcome | DeleteOutcome;
  }
  return { result: wire, lookup: outcome.lookup };
}

const storeOutcomes: readonly string[] = ['STORED', 'NOT_STORED', 'EXISTS', 'NOT_FOUND'] satisfies StoreOutcome[];
const deleteOutcomes: readonly string[] = ['DELETED', 'NOT_FOUND', 'EXISTS'] satisfies DeleteOutcome[];
const arithOutcomes: readonly string[] = ['OK', 'NOT_FOUND', 'EXISTS'] satisfies ArithOutcome[];

type Fields = Readonly<Record<string, unknown>>;

function fieldsOf(value: unknown, what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new KaiError('KAI_BAD_FRAME', `${what} is not a map`);
  }
  return value as Fields;
}

function badResult(kind: SpecKind, detail: string): KaiError {
  return new KaiError('KAI_BAD_FRAME', `a coordinated ${kind} result ${detail}`);
}

function resultFromWire(kind: SpecKind, raw: unknown): SpecResults[SpecKind] {
  switch (kind) {
    case 'store':
    case 'delete': {
      const allowed = kind === 'store' ? storeOutcomes : deleteOutcomes;
      if (typeof raw !== 'string' || !allowed.includes(raw)) throw badResult(kind, `is not one of ${allowed.join(', ')}`);
      return raw as StoreOutcome & DeleteOutcome;
    }
    case 'touch': {
      if (raw === null) return undefined;
      const { flags, value } = fieldsOf(raw, 'a touch result');
      if (!Buffer.isBuffer(value) || !isClientFlags(flags)) {
        throw badResult(kind, 'is not an item');
      }
      return { flags, value };
    }
    case 'arith': {
      const { outcome, value, created, previousExpiresAtMs } = fieldsOf(raw, 'an arith result');
      if (typeof outcome !== 'string' || !arithOutcomes.includes(outcome)) throw badResult(kind, 'has no known outcome');
      if (typeof value !== 'string' || typeof created !== 'boolean' || !isTimeMs(previousExpiresAtMs)) {
        throw badResult(kind, 'is malformed');
      }
      return { outcome: outcome as ArithOutcome, value: uint64Of(value, 'arith value'), created, previousExpiresAtMs };
    }
    case 'fetch':
      return fetchResultFromWire(raw);
  }
}

function isTimeMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= timeMsMax;
}

function isClientFlags(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

function fetchResultFromWire(raw: unknown): FetchResult {
  const { item, created, won } = fieldsOf(raw, 'a fetch result');
  if (typeof created !== 'boolean' || typeof won !== 'boolean') throw badResult('fetch', 'is malformed');
  if (item === null) return { created, won };
  const { flags, value, expiresAtMs, marks, writtenAtMs } = fieldsOf(item, 'a fetched item');
  const marksKnown = typeof marks === 'number' && Number.isInteger(marks) && marks >= 0 && (marks & ~versionMarksAll) === 0;
  if (!Buffer.isBuffer(value) || !isClientFlags(flags) || !isTimeMs(expiresAtMs) || !isTimeMs(writtenAtMs) || !marksKnown) {
    throw badResult('fetch', 'is not an item');
  }
  return { item: { flags, value, expiresAtMs, marks, writtenAtMs }, created, won };
}

/** A coordinated outcome a peer sent, checked; KAI_BAD_FRAME when it is not one of `kind`'s. */
export function outcomeFromWire<K extends SpecKind>(kind: K, raw: unknown): SpecOutcome<K> {
  const { result, lookup } = fieldsOf(raw, 'a coordinated outcome');
  const { expired, previousValueBytes } = fieldsOf(lookup, 'a lookup');
  if (typeof expired !== 'boolean' || typeof previousValueBytes !== 'number' || !Number.isSafeInteger(previousValueBytes)) {
    throw badResult(kind, 'has a malformed lookup');
  }
  // resultFromWire checked the result against `kind`, which TypeScript cannot follow.
  return { result: resultFromWire(kind, result) as SpecResults[K], lookup: { expired, previousValueBytes } };
}
