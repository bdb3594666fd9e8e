import {
  ChunkReader,
  keyName,
  parseBinaryReply,
  parseGetReply,
  parseSetReply,
  replyLineBytesMax,
  valueFor,
  valuesPerGetMax,
} from '../../../bench/worker';

const valueBytes = 100;
const keyIndex = 42;

function valueBlock(value = valueFor(keyIndex, valueBytes)): Buffer {
  return Buffer.concat([Buffer.from(`VALUE ${keyName(keyIndex)} 0 ${valueBytes}\r\n`), value, Buffer.from('\r\n')]);
}

function hitReply(): Buffer {
  return Buffer.concat([valueBlock(), Buffer.from('END\r\n')]);
}

// Feeds `reply` split at the given points and returns the outcome after each piece.
function feed(reply: Buffer, splitPoints: number[], parse: (reader: ChunkReader) => { kind: string }): string[] {
  const reader = new ChunkReader();
  const kinds: string[] = [];
  let start = 0;
  for (const end of [...splitPoints, reply.length]) {
    reader.push(reply.subarray(start, end));
    start = end;
    kinds.push(parse(reader).kind);
  }
  return kinds;
}

describe('bench reply parser', () => {
  // A get hit is recognised whatever the packet boundaries, and only once it is complete.
  test('get hit split at every point', () => {
    const reply = hitReply();
    for (let split = 1; split < reply.length; split++) {
      const reader = new ChunkReader();
      reader.push(reply.subarray(0, split));
      expect(parseGetReply(reader, keyIndex, valueBytes).kind).toBe('incomplete');
      reader.push(reply.subarray(split));
      expect(parseGetReply(reader, keyIndex, valueBytes).kind).toBe('hit');
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  // A reply delivered one byte at a time is still parsed, with the cursor crossing many chunks.
  test('get hit one byte at a time', () => {
    const reply = hitReply();
    const splits = Array.from({ length: reply.length - 1 }, (_, index) => index + 1);
    const kinds = feed(reply, splits, (reader) => parseGetReply(reader, keyIndex, valueBytes));
    expect(kinds.slice(0, -1).every((kind) => kind === 'incomplete')).toBe(true);
    expect(kinds[kinds.length - 1]).toBe('hit');
  });

  // Misses and stores are recognised; server error lines are reported, not passed over.
  test('miss, stored and error replies', () => {
    expect(feed(Buffer.from('EN'), [], (reader) => parseGetReply(reader, keyIndex, valueBytes))).toEqual(['incomplete']);
    expect(feed(Buffer.from('END\r\n'), [2], (reader) => parseGetReply(reader, keyIndex, valueBytes))).toEqual(['incomplete', 'miss']);
    expect(feed(Buffer.from('STORED\r\n'), [3], parseSetReply)).toEqual(['incomplete', 'stored']);
    expect(feed(Buffer.from('SERVER_ERROR out of memory\r\n'), [], parseSetReply)).toEqual(['error']);
    expect(feed(Buffer.from('ERROR\r\n'), [], (reader) => parseGetReply(reader, keyIndex, valueBytes))).toEqual(['error']);
  });

  // A wrong value, a wrong key or a bad trailer is an error even when the structure looks right.
  test('wrong value, key or trailer', () => {
    const wrongValue = hitReply();
    wrongValue[wrongValue.indexOf('\n') + 5] ^= 1;
    const wrongKey = Buffer.from(hitReply().toString('latin1').replace(keyName(keyIndex), keyName(7)), 'latin1');
    const badTrailer = Buffer.from(hitReply().toString('latin1').replace('\r\nEND\r\n', '\r\nEXD\r\n'), 'latin1');
    for (const reply of [wrongValue, wrongKey, badTrailer]) {
      const reader = new ChunkReader();
      reader.push(reply);
      expect(parseGetReply(reader, keyIndex, valueBytes).kind).toBe('error');
    }
  });

  // A line without an end is rejected once it exceeds the cap, instead of buffering on.
  test('overlong line is rejected', () => {
    const reader = new ChunkReader();
    reader.push(Buffer.alloc(replyLineBytesMax + 1, 'x'));
    expect(parseSetReply(reader).kind).toBe('error');
  });

  // Binary replies: a hit, a miss and a stored reply are recognised at every split, a wrong value
  // is a value error, and an unexpected header is a protocol error without waiting for its body.
  test('binary replies', () => {
    const response = (opcode: number, status: number, extras: Buffer, value: Buffer): Buffer => {
      const header = Buffer.alloc(24);
      header[0] = 0x81;
      header[1] = opcode;
      header[4] = extras.length;
      header.writeUInt16BE(status, 6);
      header.writeUInt32BE(extras.length + value.length, 8);
      return Buffer.concat([header, extras, value]);
    };
    const hit = response(0x00, 0, Buffer.alloc(4), valueFor(keyIndex, valueBytes));
    for (let split = 1; split < hit.length; split++) {
      const reader = new ChunkReader();
      reader.push(hit.subarray(0, split));
      expect(parseBinaryReply(reader, true, keyIndex, valueBytes).kind).toBe('incomplete');
      reader.push(hit.subarray(split));
      expect(parseBinaryReply(reader, true, keyIndex, valueBytes).kind).toBe('hit');
      expect(reader.bufferedBytes).toBe(0);
    }
    const parse = (reply: Buffer, isGet: boolean): string => {
      const reader = new ChunkReader();
      reader.push(reply);
      return parseBinaryReply(reader, isGet, keyIndex, valueBytes).kind;
    };
    expect(parse(response(0x00, 1, Buffer.alloc(0), Buffer.from('Not found')), true)).toBe('miss');
    expect(parse(response(0x01, 0, Buffer.alloc(0), Buffer.alloc(0)), false)).toBe('stored');
    expect(parse(response(0x00, 0, Buffer.alloc(4), valueFor(keyIndex + 1, valueBytes)), true)).toBe('error');
    const huge = response(0x00, 0, Buffer.alloc(0), Buffer.alloc(0));
    huge.writeUInt32BE(0xffffffff, 8);
    expect(parse(huge, true)).toBe('error');
  });

  // A cluster's siblings (several VALUE lines) are one hit once END arrives, each value checked.
  test('get reply with siblings', () => {
    const reply = Buffer.concat([valueBlock(), valueBlock(), Buffer.from('END\r\n')]);
    for (let split = 1; split < reply.length; split++) {
      const reader = new ChunkReader();
      reader.push(reply.subarray(0, split));
      expect(parseGetReply(reader, keyIndex, valueBytes).kind).toBe('incomplete');
      reader.push(reply.subarray(split));
      expect(parseGetReply(reader, keyIndex, valueBytes)).toEqual({ kind: 'hit', values: 2 });
      expect(reader.bufferedBytes).toBe(0);
    }
    const parse = (blocks: Buffer[]): { kind: string } => {
      const reader = new ChunkReader();
      reader.push(Buffer.concat([...blocks, Buffer.from('END\r\n')]));
      return parseGetReply(reader, keyIndex, valueBytes);
    };
    expect(parse(Array.from({ length: valuesPerGetMax }, () => valueBlock()))).toEqual({ kind: 'hit', values: valuesPerGetMax });
    expect(parse(Array.from({ length: valuesPerGetMax + 1 }, () => valueBlock())).kind).toBe('error');
    expect(parse([valueBlock(), valueBlock(valueFor(keyIndex + 1, valueBytes))])).toMatchObject({ kind: 'error', errorKind: 'value' });
  });
});
