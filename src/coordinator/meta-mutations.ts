/**
 * The meta get's writes, as a pure decision like those of mutations.ts: `T` touches the item, `N`
 * creates an empty one on a miss, `R` and a stale item hand out the right to recache it (W) to
 * the first client that asks. That right is a mark on the item, written like any other change,
 * so every replica knows it was given and later clients are told Z.
 */
import type { FetchStepFlag } from '../rpc/messages';
import { versionMarks, type Version } from '../storage/record';
import { contentOf, latestLive, type Decision, type Mutation } from './mutations';

/** The item an mg found: as it was before the mg's `T` and `N` acted. */
export interface FetchedItem {
  readonly flags: number;
  readonly value: Buffer;
  readonly expiresAtMs: number;
  readonly marks: number;
  /** When the version found was written: what the client's node knows it by (server/access-tracker.ts). */
  readonly writtenAtMs: number;
}

export interface FetchResult {
  /** Undefined on a miss that `N` did not fill. */
  readonly item?: FetchedItem;
  /** `N` created the item. */
  readonly created: boolean;
  /** This request won the recache (W). */
  readonly won: boolean;
}

export type FetchStep = readonly [flag: FetchStepFlag, expiresAtMs: number];

const miss: Decision<FetchResult> = { write: undefined, result: { created: false, won: false } };

/** memcached compares expiry times in whole seconds. */
function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * The steps act in request order, as memcached applies them: a `T` before an `R` moves the expiry
 * `R` compares. A created item starts with no expiry and takes its `N` (or a later `T`).
 */
export function fetchMutation(steps: readonly FetchStep[], claims = true): Mutation<FetchResult> {
  return (versions, { nowMs }) => {
    const current = latestLive(versions, nowMs);
    if (!current) return vivified(steps, claims) ?? miss;
    const marks = current.marks ?? 0;
    const tokenSent = (marks & versionMarks.winTokenSent) !== 0;
    let expiresAtMs = current.expiresAtMs;
    let touched = false;
    let won = false;
    for (const [flag, stepMs] of steps) {
      if (flag === 'T') {
        expiresAtMs = stepMs;
        touched = true;
      } else if (flag === 'R' && !tokenSent && expiresAtMs !== 0 && seconds(expiresAtMs) < seconds(stepMs)) {
        won = true;
      }
    }
    if ((marks & versionMarks.stale) !== 0 && !tokenSent) won = true;
    won &&= claims;
    const result: FetchResult = { item: fetchedItem(current), created: false, won };
    if (!touched && !won) return { write: undefined, result };
    const content = contentOf(current);
    if (won) return { write: { ...content, expiresAtMs, marks: marks | versionMarks.winTokenSent }, result };
    return { write: { ...content, expiresAtMs }, result };
  };
}

/** The empty item `N` creates, and the win that goes with it unless the mg claims none. */
function vivified(steps: readonly FetchStep[], claims: boolean): Decision<FetchResult> | undefined {
  if (!steps.some(([flag]) => flag === 'N')) return undefined;
  let expiresAtMs = 0;
  for (const [flag, stepMs] of steps) if (flag !== 'R') expiresAtMs = stepMs;
  const item: FetchedItem = { flags: 0, value: Buffer.alloc(0), expiresAtMs: 0, marks: 0, writtenAtMs: 0 };
  const write = { value: item.value, flags: 0, expiresAtMs, tombstone: false };
  if (!claims) return { write, result: { item, created: true, won: false } };
  return { write: { ...write, marks: versionMarks.winTokenSent }, result: { item, created: true, won: true } };
}

function fetchedItem(version: Version): FetchedItem {
  const { flags, value, expiresAtMs, writtenAtMs } = version;
  return { flags, value, expiresAtMs, marks: version.marks ?? 0, writtenAtMs };
}
