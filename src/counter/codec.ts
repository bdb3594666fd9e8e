/**
 * A counter as a plain tuple, the form it takes on disk (storage/record-codec.ts) and on the
 * internal API (coordinator/wire.ts): `[base, setAtMs, [[actor, added, taken, atMs], ...]]`, the
 * big numbers as decimal strings, since totals outgrow 64 bits. What comes back is checked, since
 * a peer's frame is input and a file may be corrupt.
 */
import { counterActorsMax, totalDigitsMax, type Counter } from '.';
import { uint64Max } from '../protocol/numbers';
import { clockNodeLengthMax } from '../vclock';

export { totalDigitsMax };

export type ActorTotalsTuple = readonly [actor: string, added: string, taken: string, atMs: number];
export type CounterTuple = readonly [base: string, setAtMs: number, actors: readonly ActorTotalsTuple[]];


export function counterToTuple(counter: Counter): CounterTuple {
  return [
    counter.base.toString(),
    counter.setAtMs,
    counter.actors.map((totals): ActorTotalsTuple => [totals.actor, totals.added.toString(), totals.taken.toString(), totals.atMs]),
  ];
}

function decimalOf(value: unknown, digitsMax: number): bigint | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > digitsMax || !/^[0-9]+$/.test(value)) return undefined;
  return BigInt(value);
}

const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** The counter a tuple holds, or a sentence naming its first problem. */
export function counterFromTuple(tuple: unknown): Counter | string {
  if (!Array.isArray(tuple) || tuple.length !== 3) return 'a counter is not a 3-tuple';
  const [baseText, setAtMs, actorTuples] = tuple as unknown[];
  const base = decimalOf(baseText, 20);
  if (base === undefined || base > uint64Max) return 'a counter base is not a 64-bit unsigned decimal';
  if (!isTime(setAtMs)) return 'a counter set time is not a time';
  if (!Array.isArray(actorTuples)) return 'counter actors are not an array';
  if (actorTuples.length > counterActorsMax) return `a counter has over ${counterActorsMax} actors`;
  const actors = [];
  for (const actorTuple of actorTuples as unknown[]) {
    if (!Array.isArray(actorTuple) || actorTuple.length !== 4) return 'a counter actor is not a 4-tuple';
    const [actor, addedText, takenText, atMs] = actorTuple as unknown[];
    // An actor is a clock entry's name (coordinator/replica.ts), bounded alike.
    if (typeof actor !== 'string' || actor.length === 0 || actor.length > clockNodeLengthMax) return 'a counter actor is not a name';
    const added = decimalOf(addedText, totalDigitsMax);
    const taken = decimalOf(takenText, totalDigitsMax);
    if (added === undefined || taken === undefined) return `counter totals of ${actor} are not decimals of at most ${totalDigitsMax} digits`;
    if (!isTime(atMs)) return `counter actor ${actor} has no time`;
    const previous = actors[actors.length - 1];
    if (previous && previous.actor >= actor) return 'counter actors are not sorted and distinct';
    actors.push({ actor, added, taken, atMs });
  }
  return { base, setAtMs, actors };
}
