// Versions survive the on-disk tuple form: 6-tuples, a counter's 7th item, and the meta marks as an 8th with or without a counter.
import { Packr } from 'msgpackr';
import { counterFrom, counterSetTo } from '../../../src/counter';
import { counterToTuple } from '../../../src/counter/codec';
import { versionMarks, type Version } from '../../../src/storage/record';
import { assertValidRecord, decodeVersions, encodeVersions } from '../../../src/storage/record-codec';
import { version, versionTimeMs } from '../../support/versions';

/** The packer record-codec.ts writes with: plain arrays. */
const packr = new Packr({ useRecords: false });
const counter = counterSetTo(counterFrom(5n, versionTimeMs - 10), 'node-a~x', 8n, versionTimeMs);
const { stale, winTokenSent, keyBase64 } = versionMarks;

const plain = version('plain', { flags: 7, expiresAtMs: versionTimeMs + 60_000 });
const counted = version('8', { counter });
const marked = version('marked', { marks: stale | winTokenSent });
const markedCounter = version('8', { counter, marks: keyBase64 });

/** The tuples a blob holds, as msgpack decodes them. */
function tuplesOf(blob: Buffer): unknown[][] {
  return packr.unpack(blob) as unknown[][];
}

function tuple(of: Version): unknown[] {
  return [
    of.clock.map((entry) => [entry.node, entry.counter, entry.timestampMs]),
    of.value,
    of.flags,
    of.expiresAtMs,
    of.tombstone,
    of.writtenAtMs,
  ];
}

describe('record codec: the version tuples', () => {
  // Each shape keeps its fields, and only the items it needs: no counter and no marks is still six items.
  test('6-, 7- and 8-tuples', () => {
    const tuples = tuplesOf(encodeVersions([plain, counted, marked, markedCounter]));
    expect(tuples.map((item) => item.length)).toEqual([6, 7, 8, 8]);
    expect(tuples[0]).toEqual(tuple(plain));
    expect(tuples[1]).toEqual([...tuple(counted), counterToTuple(counter)]);
    // Marks without a counter hold the counter's place with null.
    expect(tuples[2]).toEqual([...tuple(marked), null, stale | winTokenSent]);
    expect(tuples[3]).toEqual([...tuple(markedCounter), counterToTuple(counter), keyBase64]);
  });

  // What is encoded decodes to the same versions, marks and counters included, in the same order.
  test('round trip', () => {
    const versions = [plain, counted, marked, markedCounter, version('', { tombstone: true })];
    expect(decodeVersions(encodeVersions(versions))).toEqual(versions);
    for (const marks of [stale, winTokenSent, keyBase64, stale | winTokenSent | keyBase64]) {
      const single = version('v', { marks });
      expect(decodeVersions(encodeVersions([single]))).toEqual([single]);
    }
  });

  // Rows written before marks existed (6- and 7-tuples) read as unmarked; a null counter and zero marks are none.
  test('older and sparse tuples decode', () => {
    expect(decodeVersions(packr.pack([tuple(plain)]))).toEqual([plain]);
    expect(decodeVersions(packr.pack([[...tuple(counted), counterToTuple(counter)]]))).toEqual([counted]);
    expect(decodeVersions(packr.pack([[...tuple(plain), null]]))).toEqual([plain]);
    expect(decodeVersions(packr.pack([[...tuple(plain), null, 0]]))).toEqual([plain]);
    expect(decodeVersions(encodeVersions([version('v', { marks: 0 })]))).toEqual([version('v')]);
  });

  // A tuple of another length is a corrupt row: an assertion, never a guess.
  test('other lengths are refused', () => {
    expect(() => decodeVersions(packr.pack([tuple(plain).slice(0, 5)]))).toThrow(/6- to 8-tuple/);
    expect(() => decodeVersions(packr.pack([[...tuple(plain), null, stale, 'extra']]))).toThrow(/6- to 8-tuple/);
  });

  // Before writing, marks must be known bits and not zero (zero is written as no marks at all).
  test('a record with unknown mark bits is refused', () => {
    const record = (marks: number) => ({ key: Buffer.from('k'), bucket: 0, versions: [version('v', { marks })] });
    expect(() => assertValidRecord(record(stale | winTokenSent | keyBase64))).not.toThrow();
    expect(() => assertValidRecord(record(8))).toThrow(/known mark bits/);
    expect(() => assertValidRecord(record(stale | 16))).toThrow(/known mark bits/);
    expect(() => assertValidRecord(record(0))).toThrow(/known mark bits/);
    expect(() => assertValidRecord(record(1.5))).toThrow(/known mark bits/);
  });
});
