/**
 * Versions as they cross the internal API, and back. The frame layer has already checked each
 * field's type (rpc/message-shapes.ts); here the invariants a stored Version must hold are checked
 * before a peer's version is used or stored, since a peer is another process and its data input:
 * distinct clock entries with positive counters, a tombstone without a value, a value within the
 * size limit. A version that breaks one is refused with KAI_BAD_FRAME, never stored.
 */
import { counterBytesEstimate, type Counter } from '../counter';
import { counterFromTuple, counterToTuple } from '../counter/codec';
import { KaiError } from '../errors';
import type { WireDigest, WireStoreItem, WireVersion } from '../rpc/messages';
import { versionMarksAll, type Version } from '../storage/record';
import type { StoreItem } from './replica';
import { compare, defaultPruneLimits, type VClock } from '../vclock';

export function clockToWire(clock: VClock): WireVersion['clock'] {
  return clock.map((entry) => [entry.node, entry.counter, entry.timestampMs] as const);
}

export function versionToWire(version: Version): WireVersion {
  const wire: WireVersion = {
    clock: clockToWire(version.clock),
    value: version.value,
    flags: version.flags,
    expiresAtMs: version.expiresAtMs,
    tombstone: version.tombstone,
    writtenAtMs: version.writtenAtMs,
  };
  const counted = version.counter ? { ...wire, counter: counterToTuple(version.counter) } : wire;
  return version.marks ? { ...counted, marks: version.marks } : counted;
}

export function versionsToWire(versions: readonly Version[]): WireVersion[] {
  return versions.map(versionToWire);
}

/** A key's versions to store, as replicaStore and each storeMany item carry them, hint included. */
export function storeItemToWire(item: StoreItem): WireStoreItem {
  const wire = { key: item.key, bucket: item.bucket, versions: versionsToWire(item.versions) };
  return item.hintFor === undefined ? wire : { ...wire, hintFor: item.hintFor };
}

/** Why the wire version cannot be a stored Version, or undefined when it can. */
export function wireVersionProblem(wire: WireVersion, valueBytesMax: number): string | undefined {
  const clockProblem = wireClockProblem(wire.clock);
  if (clockProblem) return clockProblem;
  if (wire.tombstone && wire.value.length > 0) return 'a tombstone carries a value';
  if (wire.value.length > valueBytesMax) return `a value of ${wire.value.length} bytes is over ${valueBytesMax}`;
  if (wire.expiresAtMs < 0) return 'a negative expiry';
  if (wire.marks !== undefined && (wire.marks & ~versionMarksAll) !== 0) return `unknown marks ${wire.marks}`;
  if (wire.counter !== undefined) {
    if (wire.tombstone) return 'a tombstone carries a counter';
    const counter = counterFromTuple(wire.counter);
    if (typeof counter === 'string') return counter;
  }
  return undefined;
}

/** Why the clock cannot be a version's, or undefined when it can. */
function wireClockProblem(clock: WireVersion['clock']): string | undefined {
  if (clock.length === 0) return 'a version has an empty clock';
  // A clock is pruned to entriesMax on every write; more than that was not written by a kai node.
  if (clock.length > defaultPruneLimits.entriesMax) return `a clock has over ${defaultPruneLimits.entriesMax} entries`;
  const nodes = new Set<string>();
  for (const [node, counter] of clock) {
    if (nodes.has(node)) return `clock entry ${node} appears twice`;
    nodes.add(node);
    if (counter < 1) return `clock entry ${node} has counter ${counter}`;
  }
  return undefined;
}

/** A clock as versions carry it: entries sorted by node, as vclock.merge keeps them. */
function clockFromWire(wire: WireVersion['clock']): VClock {
  return wire
    .map(([node, counter, timestampMs]) => ({ node, counter, timestampMs }))
    .sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : 0));
}

/** What identifies a version without its value (WireDigest). */
export interface VersionDigest {
  readonly clock: VClock;
  readonly writtenAtMs: number;
}

export function digestToWire(version: Version): WireDigest {
  return { clock: clockToWire(version.clock), writtenAtMs: version.writtenAtMs };
}

/** The digest a peer sent, or KAI_BAD_FRAME naming its problem. */
export function digestFromWire(wire: WireDigest): VersionDigest {
  const problem = wireClockProblem(wire.clock);
  if (problem) throw new KaiError('KAI_BAD_FRAME', problem);
  return { clock: clockFromWire(wire.clock), writtenAtMs: wire.writtenAtMs };
}

/** Whether `version` is the write `digest` names: equal clocks and write times. */
export function isDigestOf(version: Version, digest: VersionDigest): boolean {
  return version.writtenAtMs === digest.writtenAtMs && compare(version.clock, digest.clock) === 'equal';
}

/** The stored Version a peer sent, or KAI_BAD_FRAME naming the first problem. */
export function versionFromWire(wire: WireVersion, valueBytesMax: number): Version {
  const problem = wireVersionProblem(wire, valueBytesMax);
  if (problem) throw new KaiError('KAI_BAD_FRAME', problem);
  // Entries sorted by node, as vclock.merge keeps them, so equal clocks compare equal in any order.
  const clock = clockFromWire(wire.clock);
  const version: Version = {
    clock,
    value: wire.value,
    flags: wire.flags,
    expiresAtMs: wire.expiresAtMs,
    tombstone: wire.tombstone,
    writtenAtMs: wire.writtenAtMs,
  };
  const marked = wire.marks === undefined ? version : { ...version, marks: wire.marks };
  // wireVersionProblem has checked the counter; decoding it again is cheap and rare.
  return wire.counter === undefined ? marked : { ...marked, counter: counterFromTuple(wire.counter) as Counter };
}

export function versionsFromWire(wires: readonly WireVersion[], valueBytesMax: number): Version[] {
  return wires.map((wire) => versionFromWire(wire, valueBytesMax));
}

/**
 * A generous estimate of what versions take in a frame: value bytes, plus room for the fields and
 * clock entries msgpack adds. Batches are cut by it so a frame never exceeds its cap.
 */
export function versionsWireBytes(versions: readonly Version[]): number {
  let bytes = 16;
  for (const version of versions) {
    bytes += version.value.length + 48 + counterBytesEstimate(version.counter);
    for (const entry of version.clock) bytes += entry.node.length + 32;
  }
  return bytes;
}

/** A key with its versions, as batches of stores and fetches carry them. */
interface KeyedVersions {
  readonly key: Buffer;
  readonly versions: readonly Version[];
}

/** What one key and its versions take in a frame (versionsWireBytes plus the key). */
export function itemWireBytes(item: KeyedVersions): number {
  return versionsWireBytes(item.versions) + item.key.length;
}

/** The versions' share of a batch: what the bytes-per-second budgets of background work count. */
export function versionsBytesOf(items: readonly KeyedVersions[]): number {
  let bytes = 0;
  for (const item of items) bytes += versionsWireBytes(item.versions);
  return bytes;
}

/**
 * Cuts items into batches of at most `itemsMax` items and about `bytesMax` bytes each, in order.
 * An item larger than `bytesMax` on its own makes a batch of one: any one key fits a frame.
 */
export function batchesOf<T extends KeyedVersions>(items: readonly T[], bytesMax: number, itemsMax: number): T[][] {
  return batchesBy(items, itemWireBytes, bytesMax, itemsMax);
}

/** batchesOf for items of any kind, sized by `bytesOf`. */
export function batchesBy<T>(items: readonly T[], bytesOf: (item: T) => number, bytesMax: number, itemsMax: number): T[][] {
  const batches: T[][] = [];
  let batch: T[] = [];
  let batchBytes = 0;
  for (const item of items) {
    const bytes = bytesOf(item);
    if (batch.length > 0 && (batchBytes + bytes > bytesMax || batch.length >= itemsMax)) {
      batches.push(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push(item);
    batchBytes += bytes;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
