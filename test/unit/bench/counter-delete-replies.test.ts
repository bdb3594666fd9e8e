// The load generator's parsers for incr/decr, counter gets and deletes accept exactly memcached's replies.
import { ChunkReader } from '../../../bench/chunk-reader';
import { keyName, parseCounterGetReply, parseCounterReply, parseDeleteReply, type ReplyOutcome } from '../../../bench/replies';

const keyIndex = 7;

/** The outcome after each piece of `reply`, split before every byte in turn. */
function outcomesSplitEverywhere(reply: string, parse: (reader: ChunkReader) => ReplyOutcome): Set<string> {
  const finals = new Set<string>();
  const bytes = Buffer.from(reply, 'latin1');
  for (let split = 0; split <= bytes.length; split++) {
    const reader = new ChunkReader();
    reader.push(bytes.subarray(0, split));
    const early = parse(reader);
    // A reply is good only once whole; it may be known wrong before it ends.
    if (split < bytes.length && early.kind !== 'incomplete' && early.kind !== 'error') {
      throw new Error(`complete after ${split} of ${bytes.length} bytes: ${early.kind}`);
    }
    reader.push(bytes.subarray(split));
    const outcome = split < bytes.length && early.kind === 'incomplete' ? parse(reader) : early;
    finals.add(outcome.kind === 'error' ? `error ${outcome.errorKind}` : outcome.kind);
    // After an error the connection is replaced, so only a good reply must be read to its end.
    if (outcome.kind !== 'error') expect(reader.bufferedBytes).toBe(0);
  }
  return finals;
}

describe('bench counter and delete replies', () => {
  // A number is an incr's answer, whatever the packet boundaries; NOT_FOUND and errors are errors.
  test('incr and decr', () => {
    expect(outcomesSplitEverywhere('18446744073709551615\r\n', (reader) => parseCounterReply(reader, 'incr'))).toEqual(new Set(['number']));
    expect(outcomesSplitEverywhere('NOT_FOUND\r\n', (reader) => parseCounterReply(reader, 'decr'))).toEqual(new Set(['error protocol']));
    expect(outcomesSplitEverywhere('CLIENT_ERROR cannot increment or decrement non-numeric value\r\n', (reader) => parseCounterReply(reader, 'incr'))).toEqual(
      new Set(['error protocol']),
    );
    expect(outcomesSplitEverywhere('123456789012345678901\r\n', (reader) => parseCounterReply(reader, 'incr'))).toEqual(new Set(['error protocol']));
  });

  // A counter get is one decimal value, padded or not; a second VALUE line (siblings) is an error.
  test('counter gets', () => {
    const value = (data: string): string => `VALUE ${keyName(keyIndex)} 0 ${data.length}\r\n${data}\r\n`;
    const parse = (reader: ChunkReader): ReplyOutcome => parseCounterGetReply(reader, keyIndex);
    expect(outcomesSplitEverywhere(`${value('5000000000001')}END\r\n`, parse)).toEqual(new Set(['hit']));
    expect(outcomesSplitEverywhere(`${value('99  ')}END\r\n`, parse)).toEqual(new Set(['hit']));
    expect(outcomesSplitEverywhere('END\r\n', parse)).toEqual(new Set(['miss']));
    expect(outcomesSplitEverywhere(`${value('12x')}END\r\n`, parse)).toEqual(new Set(['error value']));
    const twoValues = new ChunkReader();
    twoValues.push(Buffer.from(`${value('1')}${value('2')}END\r\n`, 'latin1'));
    expect(parse(twoValues)).toMatchObject({ kind: 'error', errorKind: 'protocol' });
  });

  // DELETED is the only right answer: the bench deletes only keys it has just set.
  test('deletes', () => {
    expect(outcomesSplitEverywhere('DELETED\r\n', parseDeleteReply)).toEqual(new Set(['deleted']));
    expect(outcomesSplitEverywhere('NOT_FOUND\r\n', parseDeleteReply)).toEqual(new Set(['error protocol']));
  });
});
