/**
 * The meta commands' replies, masked for comparison the way normalizeReplies masks the classic
 * ones: `VA <size>` data blocks are skipped by their length, cas tokens (`c<digits>`) join the cas
 * uniques of `gets` in one numbering, and `me`'s memcached-internal fields keep their names and
 * order but lose their values. Remaining-TTL and last-access tokens stay exact; forgiveClockTicks
 * lets them differ by the one-second tick two clocks cannot agree on.
 */
import { normalizeReplies, type MaskedLine, type ReplyLineRule } from './harness';

/** Status codes a meta reply line starts with, other than `VA` (which has a size) and `ME`. */
const metaStatusCodes: ReadonlySet<string> = new Set(['HD', 'EN', 'NS', 'EX', 'NF', 'MN']);
/** The fields `me` prints, in its order; their values are memcached's bookkeeping or depend on timing. */
export const metaDebugFields = ['exp', 'la', 'cas', 'fetch', 'cls', 'size'] as const;
/** A return flag carrying a cas unique. `c0`, what `ms c` answers when nothing was stored, stays as it is. */
const casToken = /^c([1-9]\d*)$/;
/** Return flags that read a clock: `t` (seconds of TTL left) and `l` (seconds since last access). */
const clockToken = /^([tl])(\d+)$/;

function maskFlags(flags: readonly string[], casName: (unique: string) => string): string[] {
  return flags.map((flag) => {
    const cas = casToken.exec(flag);
    return cas ? `c${casName(cas[1])}` : flag;
  });
}

/**
 * `ME <key> exp=.. la=.. cas=.. fetch=.. cls=.. size=..`: each known field's value becomes its
 * shape (`<number>`, or `<yes|no>` for fetch), so the names, their order and that the values are
 * numbers are compared, not memcached's internal numbers. A value of the wrong shape is kept.
 */
function maskDebugLine(parts: readonly string[]): MaskedLine {
  const fields = parts.slice(2).map((field) => {
    const [name, value] = field.split('=', 2);
    if (!(metaDebugFields as readonly string[]).includes(name) || value === undefined) return field;
    if (name === 'fetch') return /^(yes|no)$/.test(value) ? 'fetch=<yes|no>' : field;
    return /^-?\d+$/.test(value) ? `${name}=<number>` : field;
  });
  return { text: [...parts.slice(0, 2), ...fields].join(' ') };
}

export const metaReplyRules: readonly ReplyLineRule[] = [
  (parts, casName) => {
    if (parts[0] !== 'VA' || parts.length < 2 || !/^\d+$/.test(parts[1])) return undefined;
    return { text: ['VA', parts[1], ...maskFlags(parts.slice(2), casName)].join(' '), dataBytes: Number(parts[1]) };
  },
  (parts, casName) => (metaStatusCodes.has(parts[0]) ? { text: [parts[0], ...maskFlags(parts.slice(1), casName)].join(' ') } : undefined),
  (parts) => (parts[0] === 'ME' && parts.length >= 3 ? maskDebugLine(parts) : undefined),
];

/** normalizeReplies for a transcript mixing meta and classic replies. */
export function normalizeMetaReplies(bytes: Buffer): string {
  return normalizeReplies(bytes, metaReplyRules);
}

/** Whether two return flags are the same clock reading at most `ticks` seconds apart. */
function withinTicks(actual: string, expected: string, ticks: number): boolean {
  const ours = clockToken.exec(actual);
  const theirs = clockToken.exec(expected);
  return ours !== null && theirs !== null && ours[1] === theirs[1] && Math.abs(Number(ours[2]) - Number(theirs[2])) <= ticks;
}

/**
 * `actual` (normalized) with each `t<seconds>` or `l<seconds>` flag of a meta status line that is
 * one second off the expected transcript's replaced by the expected value. Each server counts
 * seconds on its own clock, and a stream cannot stop a second from ending between a write and the
 * read of its TTL; `t-1` (no expiry) is never forgiven, nor any other difference.
 */
export function forgiveClockTicks(actual: string, expected: string, ticks = 1): string {
  const expectedLines = expected.split('\n');
  return actual
    .split('\n')
    .map((line, index) => {
      const other = expectedLines[index];
      if (other === undefined || line === other || !/^(HD|VA)( |$)/.test(line)) return line;
      const flags = line.split(' ');
      const otherFlags = other.split(' ');
      if (flags.length !== otherFlags.length) return line;
      return flags.map((flag, at) => (withinTicks(flag, otherFlags[at], ticks) ? otherFlags[at] : flag)).join(' ');
    })
    .join('\n');
}

/**
 * Whether `actual` and `expected` differ, if at all, only in the seconds `t` and `l` flags read.
 * A server starved of the CPU can update its clock late and then jump two seconds at once
 * (memcached's clock ticks on a timer of its main thread), so a stream whose replies differ only
 * so is played again rather than judged: a real difference shows in every play.
 */
export function differOnlyInClockReadings(actual: string, expected: string): boolean {
  return forgiveClockTicks(actual, expected, Number.POSITIVE_INFINITY) === expected;
}

/**
 * What a step names when the replies so far hold no cas: a token both servers refuse. Only a
 * subject that already answered differently gets here, and the comparison shows where.
 */
export const noCasReturned = 'none';

/**
 * Every cas unique meta replies returned so far (`c<digits>` on an HD or VA line), in order, for
 * steps that must name one. The streams store no value that looks like such a line.
 */
function metaCasUniques(replies: Buffer): string[] {
  const lines = replies.toString('latin1').split('\r\n');
  return lines.filter((line) => /^(HD|VA \d+)( |$)/.test(line)).flatMap((line) => line.split(' ').flatMap((flag) => casToken.exec(flag)?.[1] ?? []));
}

/** The first cas unique a meta reply returned, or noCasReturned. */
export function firstMetaCas(replies: Buffer): string {
  return metaCasUniques(replies).at(0) ?? noCasReturned;
}

/** The last cas unique a meta reply returned, or noCasReturned. */
export function lastMetaCas(replies: Buffer): string {
  return metaCasUniques(replies).at(-1) ?? noCasReturned;
}
