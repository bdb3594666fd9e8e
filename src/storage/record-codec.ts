import { Packr } from 'msgpackr';
import { counterFromTuple, counterToTuple, type CounterTuple } from '../counter/codec';
import { assert } from '../errors';
import type { ClockEntry } from '../vclock';
import { versionMarksAll, type StoredRecord, type Version } from './record';

/**
 * The on-disk form of a record's versions: a msgpack array of version tuples
 * `[clock, value, flags, expiresAtMs, tombstone, writtenAtMs]`, each clock a list of
 * `[node, counter, timestampMs]`, then a counter's state (src/counter/codec.ts) as a seventh item
 * (null when there is none but marks follow) and the meta marks (record.ts) as an eighth. Tuples rather than maps keep rows small and the layout fixed;
 * a change of layout is a change of the schema version in sqlite-schema.ts.
 */

type ClockEntryTuple = [node: string, counter: number, timestampMs: number];
type VersionTuple = [
  clock: ClockEntryTuple[],
  value: Buffer,
  flags: number,
  expiresAtMs: number,
  tombstone: boolean,
  writtenAtMs: number,
  counter?: CounterTuple | null,
  marks?: number,
];

const flagsMax = 0xffff_ffff;

// Records would turn objects into msgpackr's record extension; plain arrays need none of it.
const packr = new Packr({ useRecords: false });

/** Checks what every stored record must satisfy, before writing and after reading back. */
export function assertValidRecord(record: StoredRecord): void {
  assert(Buffer.isBuffer(record.key) && record.key.length > 0, 'record key is a non-empty Buffer');
  assert(Number.isSafeInteger(record.bucket) && record.bucket >= 0, 'record bucket is an integer >= 0');
  assert(Array.isArray(record.versions) && record.versions.length > 0, 'record holds at least one version');
  for (const version of record.versions) assertValidVersion(version);
}

function assertValidVersion(version: Version): void {
  assert(Buffer.isBuffer(version.value), 'version value is a Buffer');
  assert(Number.isInteger(version.flags) && version.flags >= 0 && version.flags <= flagsMax, 'flags is a uint32');
  assert(Number.isSafeInteger(version.expiresAtMs) && version.expiresAtMs >= 0, 'expiresAtMs is an integer >= 0');
  assert(Number.isSafeInteger(version.writtenAtMs) && version.writtenAtMs >= 0, 'writtenAtMs is an integer >= 0');
  assert(typeof version.tombstone === 'boolean', 'tombstone is a boolean');
  assert(!version.tombstone || version.value.length === 0, 'a tombstone holds no value bytes');
  assert(!version.tombstone || version.counter === undefined, 'a tombstone holds no counter');
  assert(
    version.marks === undefined || (Number.isInteger(version.marks) && version.marks > 0 && (version.marks & ~versionMarksAll) === 0),
    'marks are known mark bits',
  );
  for (const entry of version.clock) {
    assert(typeof entry.node === 'string' && entry.node.length > 0, 'clock entry node is a non-empty string');
    assert(Number.isSafeInteger(entry.counter) && entry.counter > 0, 'clock entry counter is an integer > 0');
    assert(Number.isSafeInteger(entry.timestampMs), 'clock entry timestamp is an integer');
  }
}

export function encodeVersions(versions: readonly Version[]): Buffer {
  const tuples: VersionTuple[] = versions.map((version) => {
    const tuple: VersionTuple = [
      version.clock.map((entry): ClockEntryTuple => [entry.node, entry.counter, entry.timestampMs]),
      version.value,
      version.flags,
      version.expiresAtMs,
      version.tombstone,
      version.writtenAtMs,
    ];
    if (version.counter) tuple.push(counterToTuple(version.counter));
    if (version.marks) {
      if (!version.counter) tuple.push(null);
      tuple.push(version.marks);
    }
    return tuple;
  });
  return packr.pack(tuples);
}

/** Decodes what encodeVersions wrote; a malformed blob fails an assertion (the file is corrupt). */
export function decodeVersions(blob: Buffer): Version[] {
  const decoded: unknown = packr.unpack(blob);
  assert(Array.isArray(decoded), 'stored versions are an array');
  return decoded.map(decodeVersion);
}

function decodeVersion(tuple: unknown): Version {
  assert(Array.isArray(tuple) && tuple.length >= 6 && tuple.length <= 8, 'stored version is a 6- to 8-tuple');
  const [clock, value, flags, expiresAtMs, tombstone, writtenAtMs, counterTuple, marks] = tuple as unknown[];
  assert(Array.isArray(clock), 'stored clock is an array');
  const version: Version = {
    clock: clock.map(decodeClockEntry),
    value: value as Buffer,
    flags: flags as number,
    expiresAtMs: expiresAtMs as number,
    tombstone: tombstone as boolean,
    writtenAtMs: writtenAtMs as number,
  };
  const marked: Version = typeof marks === 'number' && marks !== 0 ? { ...version, marks } : version;
  if (counterTuple === undefined || counterTuple === null) return marked;
  const counter = counterFromTuple(counterTuple);
  assert(typeof counter !== 'string', `stored counter is well formed (${String(counter)})`);
  return { ...marked, counter };
}

function decodeClockEntry(tuple: unknown): ClockEntry {
  assert(Array.isArray(tuple) && tuple.length === 3, 'stored clock entry is a 3-tuple');
  const [node, counter, timestampMs] = tuple as unknown[];
  return { node: node as string, counter: counter as number, timestampMs: timestampMs as number };
}

/**
 * What the record adds to `counts()`: key plus value bytes when some version is not a tombstone,
 * undefined when the record holds only tombstones (it is then not an item).
 */
export function itemBytesOf(record: StoredRecord): number | undefined {
  if (record.versions.every((version) => version.tombstone)) return undefined;
  let bytes = record.key.length;
  for (const version of record.versions) bytes += version.value.length;
  return bytes;
}
