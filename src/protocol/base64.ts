/**
 * Base64 as memcached 1.6 reads and writes keys given with the meta `b` flag. Its decoder is
 * lenient in its own way, and clients see the consequences, so kai reads keys the same way:
 * bytes outside the alphabet are skipped, the remaining characters must come in whole groups of
 * four, and decoding stops after the first group that holds padding.
 */

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const padding = 0x3d; // '='
const notInAlphabet = 0x80;

/** Each byte's 6-bit value; '=' reads as 0 and counts as a character, as in memcached. */
const decodeTable: Uint8Array = (() => {
  const table = new Uint8Array(256).fill(notInAlphabet);
  for (let index = 0; index < alphabet.length; index++) table[alphabet.charCodeAt(index)] = index;
  table[padding] = 0;
  return table;
})();

/** The decoded bytes, or undefined where memcached's decoder fails (it then answers an error). */
export function decodeBase64Key(encoded: Buffer): Buffer | undefined {
  let characters = 0;
  for (const byte of encoded) if (decodeTable[byte] !== notInAlphabet) characters++;
  if (characters === 0 || characters % 4 !== 0) return undefined;
  const out = Buffer.alloc((characters / 4) * 3);
  const block = [0, 0, 0, 0];
  let filled = 0;
  let written = 0;
  let pads = 0;
  for (const byte of encoded) {
    const sextet = decodeTable[byte];
    if (sextet === notInAlphabet) continue;
    if (byte === padding) pads++;
    block[filled++] = sextet;
    if (filled < 4) continue;
    out[written++] = ((block[0] << 2) | (block[1] >> 4)) & 0xff;
    out[written++] = ((block[1] << 4) | (block[2] >> 2)) & 0xff;
    out[written++] = ((block[2] << 6) | block[3]) & 0xff;
    filled = 0;
    if (pads > 0) {
      if (pads > 2) return undefined;
      written -= pads;
      break;
    }
  }
  return written === 0 ? undefined : out.subarray(0, written);
}

/** Standard base64 with padding, as memcached writes a binary key back. */
export function encodeBase64Key(key: Buffer): string {
  return key.toString('base64');
}
