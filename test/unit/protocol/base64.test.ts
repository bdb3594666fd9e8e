// Keys given with the meta `b` flag decode as memcached's lenient decoder reads them, and encode back as standard base64.
import { decodeBase64Key, encodeBase64Key } from '../../../src/protocol/base64';

function decoded(encoded: string | Buffer): string | undefined {
  return decodeBase64Key(typeof encoded === 'string' ? Buffer.from(encoded, 'latin1') : encoded)?.toString('latin1');
}

describe('decodeBase64Key', () => {
  // Whole groups of four decode to three bytes each; one or two '=' at the end take one or two back.
  test('groups of four, with and without padding', () => {
    expect(decoded('QUJD')).toBe('ABC');
    expect(decoded('QUJDREVG')).toBe('ABCDEF');
    expect(decoded('QUI=')).toBe('AB');
    expect(decoded('QQ==')).toBe('A');
    expect(decoded('QUJDQQ==')).toBe('ABCA');
    expect(decodeBase64Key(Buffer.from('AP8KIA==', 'latin1'))).toEqual(Buffer.from([0x00, 0xff, 0x0a, 0x20]));
  });

  // Bytes outside the alphabet (URL-safe letters, punctuation, tabs, high bytes) are skipped, not refused.
  test('characters outside the alphabet are skipped', () => {
    expect(decoded('Q*U.J-D')).toBe('ABC');
    expect(decoded('QU_JD')).toBe('ABC');
    expect(decoded('\tQUJD\r')).toBe('ABC');
    expect(decoded(Buffer.from([0x80, 0x51, 0x55, 0xff, 0x4a, 0x44]))).toBe('ABC');
  });

  // What is left after skipping must come in whole groups of four: '=' counts as a character.
  test('a count of characters that is not a multiple of four is refused', () => {
    expect(decoded('Q')).toBeUndefined();
    expect(decoded('QUJ')).toBeUndefined();
    expect(decoded('QUJDQ')).toBeUndefined();
    expect(decoded('QUJD=')).toBeUndefined();
    expect(decoded('QQ=')).toBeUndefined();
    expect(decoded('Q*U*J')).toBeUndefined();
  });

  // Nothing to decode is a failure, as memcached's decoder returns 0 bytes for it.
  test('empty input, or only skipped bytes, is refused', () => {
    expect(decoded('')).toBeUndefined();
    expect(decoded('***')).toBeUndefined();
    expect(decoded('-_.!')).toBeUndefined();
  });

  // Decoding stops after the first group that holds padding: whatever follows is never read.
  test('decoding stops after the first padded group', () => {
    expect(decoded('QQ==QUJD')).toBe('A');
    expect(decoded('QUI=QUJD')).toBe('AB');
    // The second group would be invalid padding, but it is never reached.
    expect(decoded('QQ======')).toBe('A');
  });

  // Three or four '=' in one group is invalid padding, refused even after good groups.
  test('invalid padding', () => {
    expect(decoded('Q===')).toBeUndefined();
    expect(decoded('====')).toBeUndefined();
    expect(decoded('QUJD====')).toBeUndefined();
    expect(decoded('QUJDA===')).toBeUndefined();
  });

  // '=' is read as a zero wherever it stands in its group, and each one drops a byte from the group's end.
  test('padding inside a group reads as zero bits', () => {
    // Q=16, '='=0, J=9, D=3: bytes 0x40 0x02 0x43, one dropped for the one '='.
    expect(decodeBase64Key(Buffer.from('Q=JD', 'latin1'))).toEqual(Buffer.from([0x40, 0x02]));
    expect(decodeBase64Key(Buffer.from('=QJD', 'latin1'))).toEqual(Buffer.from([0x01, 0x02]));
  });
});

describe('encodeBase64Key', () => {
  // memcached writes a binary key back as standard base64 with padding.
  test('standard base64 with padding', () => {
    expect(encodeBase64Key(Buffer.from('A'))).toBe('QQ==');
    expect(encodeBase64Key(Buffer.from('AB'))).toBe('QUI=');
    expect(encodeBase64Key(Buffer.from('ABC'))).toBe('QUJD');
    expect(encodeBase64Key(Buffer.from([0xfb, 0xff]))).toBe('+/8=');
  });

  // Every key of 1 to 186 bytes (the longest a 250-byte token can carry) decodes back to itself.
  test('round trip of binary keys of every length', () => {
    for (let length = 1; length <= 186; length++) {
      const key = Buffer.from(Array.from({ length }, (_, index) => (index * 131 + length * 7) & 0xff));
      const encoded = encodeBase64Key(key);
      expect(encoded.length).toBeLessThanOrEqual(250);
      expect(decodeBase64Key(Buffer.from(encoded, 'latin1'))).toEqual(key);
    }
  });
});
