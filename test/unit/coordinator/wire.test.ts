// Versions cross the internal API unchanged, meta marks included, and versions no kai node writes are refused.
import { versionFromWire, versionToWire, wireVersionProblem } from '../../../src/coordinator/wire';
import { KaiError } from '../../../src/errors';
import type { WireVersion } from '../../../src/rpc/messages';
import { isRpcReply, replyProblem, requestProblem } from '../../../src/rpc/message-shapes';
import { wirePackr } from '../../../src/rpc/frames';
import { versionMarks, type Version } from '../../../src/storage/record';

const valueBytesMax = 64;

const version: Version = {
  clock: [
    { node: 'a:1', counter: 3, timestampMs: 1_700_000_000_100 },
    { node: 'b:2', counter: 1, timestampMs: 1_700_000_000_050 },
  ],
  value: Buffer.from([0, 1, 2, 255]),
  flags: 0xffffffff,
  expiresAtMs: 1_700_000_900_000,
  tombstone: false,
  writtenAtMs: 1_700_000_000_100,
};

function wireWith(change: Partial<WireVersion>): WireVersion {
  return { ...versionToWire(version), ...change };
}

describe('versions across the internal API', () => {
  // A version survives msgpack framing and the boundary checks unchanged, binary value included.
  test('round trip through msgpack', () => {
    const reply = wirePackr.unpack(wirePackr.pack({ type: 'versions', versions: [versionToWire(version)] })) as unknown;
    expect(isRpcReply(reply)).toBe(true);
    const [wire] = (reply as { versions: WireVersion[] }).versions;
    expect(versionFromWire(wire, valueBytesMax)).toEqual(version);
  });

  // Clock entries arrive in any order and are sorted by node, so equal clocks compare equal.
  test('clock entries are sorted by node', () => {
    const wire = wireWith({ clock: [['b:2', 1, 5], ['a:1', 3, 7]] });
    expect(versionFromWire(wire, valueBytesMax).clock.map((entry) => entry.node)).toEqual(['a:1', 'b:2']);
  });

  // Versions no kai node writes are refused with KAI_BAD_FRAME, naming the problem.
  test.each([
    ['an empty clock', { clock: [] }, /empty clock/],
    ['a node twice', { clock: [['a:1', 1, 0], ['a:1', 2, 0]] as WireVersion['clock'] }, /appears twice/],
    ['a zero counter', { clock: [['a:1', 0, 0]] as WireVersion['clock'] }, /counter 0/],
    ['a tombstone with a value', { tombstone: true }, /tombstone carries a value/],
    ['a value over the limit', { value: Buffer.alloc(valueBytesMax + 1) }, /over 64/],
    ['a negative expiry', { expiresAtMs: -1 }, /negative expiry/],
  ])('refuses %s', (_name, change, problem) => {
    const wire = wireWith(change);
    expect(wireVersionProblem(wire, valueBytesMax)).toMatch(problem);
    let thrown: unknown;
    try {
      versionFromWire(wire, valueBytesMax);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(KaiError);
    expect((thrown as KaiError).code).toBe('KAI_BAD_FRAME');
  });
});

describe('the meta marks across the internal API', () => {
  const { stale, winTokenSent, keyBase64 } = versionMarks;

  // Marks travel with the version and come back as they left; a version without marks carries none.
  test('round trip through msgpack and the shape check', () => {
    for (const marks of [stale, winTokenSent, keyBase64, stale | winTokenSent | keyBase64]) {
      const marked: Version = { ...version, marks };
      const reply = wirePackr.unpack(wirePackr.pack({ type: 'versions', versions: [versionToWire(marked)] })) as unknown;
      expect(isRpcReply(reply)).toBe(true);
      expect(versionFromWire((reply as { versions: WireVersion[] }).versions[0], valueBytesMax)).toEqual(marked);
    }
    expect('marks' in versionToWire(version)).toBe(false);
  });

  // A mark bit no kai node defines is refused twice over: by the frame's shape check and by the version's invariants.
  test.each([8, stale | 16, 0x80000000])('refuses marks %d', (marks) => {
    const wire = wireWith({ marks });
    expect(requestProblem({ type: 'replicaStore', key: Buffer.from('k'), bucket: 0, versions: [wire] })).toMatch(/marks/);
    expect(wireVersionProblem(wire, valueBytesMax)).toMatch(/unknown marks/);
    expect(() => versionFromWire(wire, valueBytesMax)).toThrow(expect.objectContaining({ code: 'KAI_BAD_FRAME' }) as Error);
  });

  // Zero, a fraction or a negative is not a set of marks: the sender leaves the field out instead.
  test.each([0, -1, 1.5])('the shape check refuses marks %d', (marks) => {
    expect(replyProblem({ type: 'versions', versions: [wireWith({ marks })] })).toMatch(/marks/);
  });
});
