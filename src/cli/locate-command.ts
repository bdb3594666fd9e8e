/**
 * `kai locate <key>`: the key's bucket, the preference list requests for it follow (and who
 * stands in for a primary that is down), and which replicas hold which of its versions, as the
 * node asked routes requests (server/locate.ts). Versions are named v1, v2, ... newest first, so
 * replicas that hold the same writes show the same names.
 */
import { ConfigError } from '../config/fields';
import { keyBytesMax } from '../protocol/command';
import type { WireLocatedList, WireLocatedReplica, WireLocation, WireVersionSummary } from '../rpc/messages';
import type { ConnectionSecurity } from '../rpc/tcp-transport';
import { ask, CommandError } from './node-request';
import { bytesText, formatTable } from './table';

export interface Located extends WireLocation {
  /** The key as given on the command line (in base64 when it is not text). */
  readonly key: string;
  /** The node asked. */
  readonly asked: string;
}

/**
 * The key's bytes: as typed (UTF-8), which the text protocol takes only without spaces or control
 * characters, or decoded from base64 for a key that is not text. 1 to 250 bytes either way.
 */
export function parseLocateKey(text: string, base64: boolean): Buffer {
  const key = base64 ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
  if (base64 && (key.length === 0 || key.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, ''))) {
    throw new ConfigError(`<key>: not base64: ${JSON.stringify(text)}`);
  }
  if (key.length === 0 || key.length > keyBytesMax) throw new ConfigError(`<key>: must be 1 to ${keyBytesMax} bytes, got ${key.length}`);
  if (!base64 && /[\s\x00-\x1f\x7f]/.test(text)) {
    throw new ConfigError('<key>: a memcache key has no spaces or control characters; give other keys with --base64');
  }
  return key;
}

export async function locateKey(node: string, key: Buffer, security?: ConnectionSecurity): Promise<Located> {
  const reply = await ask(node, { type: 'locate', key }, security);
  if (reply.type !== 'located') throw new CommandError(`${node} answered ${reply.type}, not located`);
  const { type: _type, ...location } = reply;
  const shown = key.toString('utf8');
  return { ...location, key: Buffer.from(shown, 'utf8').equals(key) ? shown : key.toString('base64'), asked: node };
}

export function locateJson(located: Located): string {
  return JSON.stringify(located);
}

/** What identifies a version across replicas: its clock and write time (a digest). */
function versionIdentity(version: WireVersionSummary): string {
  return JSON.stringify([version.clock, version.writtenAtMs]);
}

/** Every distinct version any replica holds, newest first, named v1, v2, ... */
function nameVersions(replicas: readonly WireLocatedReplica[]): Map<string, { name: string; version: WireVersionSummary }> {
  const distinct = new Map<string, WireVersionSummary>();
  for (const replica of replicas) for (const version of replica.versions ?? []) distinct.set(versionIdentity(version), version);
  const newestFirst = [...distinct.entries()].sort(([, a], [, b]) => b.writtenAtMs - a.writtenAtMs);
  return new Map(newestFirst.map(([identity, version], index) => [identity, { name: `v${index + 1}`, version }]));
}

function versionLine(name: string, version: WireVersionSummary): string {
  const what = version.tombstone ? 'deleted' : `${bytesText(version.valueBytes)}, flags ${version.flags}`;
  const expiry = version.expiresAtMs === 0 ? 'no expiry' : `expires ${new Date(version.expiresAtMs).toISOString()}`;
  // The writers in the clock say who wrote and merged it; their counters mean nothing to a reader.
  const writers = version.clock.map(([actor]) => actor).join(' ');
  return `${name}  written ${new Date(version.writtenAtMs).toISOString()}  ${what}  ${expiry}  clock: ${writers}`;
}

function listTitle(list: WireLocatedList, lists: number): string {
  if (lists === 1) return 'PREFERENCE LIST (reads and writes)';
  return `PREFERENCE LIST of the ${list.ring} ring (writes${list.reads ? ' and reads' : '; reads once the bucket has moved'})`;
}

function listRows(list: WireLocatedList, upOf: ReadonlyMap<string, boolean>): string[][] {
  return list.primaries.map((primary, index) => {
    const standIn = list.targets.find((target) => target.standsInFor === primary);
    const goesTo = list.targets.some((target) => target.node === primary) ? primary : standIn ? `${standIn.node} (fallback)` : 'nobody: too few members up';
    return [String(index + 1), primary, upOf.get(primary) === false ? 'down' : 'up', goesTo];
  });
}

/** Each replica's part: primary, or fallback for a primary, in each list. */
function rolesOf(node: string, lists: readonly WireLocatedList[]): string {
  const roles = new Set<string>();
  for (const list of lists) {
    const ring = lists.length === 1 ? '' : ` (${list.ring} ring)`;
    if (list.primaries.includes(node)) roles.add(`primary${ring}`);
    const standIn = list.targets.find((target) => target.node === node && target.standsInFor !== undefined);
    if (standIn !== undefined) roles.add(`fallback for ${standIn.standsInFor}${ring}`);
  }
  return [...roles].join(', ');
}

export function locateTable(located: Located): string {
  const { n, r, w } = located.quorum;
  const lines = [`key ${located.key}: bucket ${located.bucket} of ${located.buckets}, N=${n} R=${r} W=${w}, as ${located.asked} routes it`];
  if (located.refusing !== undefined) lines.push(`${located.asked} refuses client requests for now: ${located.refusing}`);
  const upOf = new Map(located.replicas.map((replica) => [replica.node, replica.up]));
  for (const list of located.lists) {
    lines.push('', listTitle(list, located.lists.length), ...formatTable(['#', 'PRIMARY', 'STATUS', 'REQUESTS GO TO'], listRows(list, upOf)));
  }
  const versions = nameVersions(located.replicas);
  lines.push('', 'VERSIONS');
  if (versions.size === 0) lines.push('none: no replica asked holds the key');
  for (const { name, version } of versions.values()) lines.push(versionLine(name, version));
  const holdings = located.replicas.map((replica) => {
    if (replica.versions === undefined) return replica.error ?? 'unknown';
    if (replica.versions.length === 0) return 'nothing';
    const names = replica.versions.map((version) => versions.get(versionIdentity(version))?.name ?? '?');
    return replica.versions.length > 1 ? `${names.join(', ')} (siblings)` : names[0];
  });
  const rows = located.replicas.map((replica, index) => [replica.node, rolesOf(replica.node, located.lists), holdings[index]]);
  lines.push('', ...formatTable(['REPLICA', 'ROLE', 'HOLDS'], rows));
  const answered = holdings.filter((_, index) => located.replicas[index].versions !== undefined);
  if (answered.length > 1) {
    lines.push(new Set(answered).size === 1 ? 'the replicas asked hold the same versions' : 'the replicas differ: read repair and anti-entropy bring them together');
  }
  return lines.join('\n');
}
