/**
 * memcached's uriencode: how `lru_crawler metadump` and `watch` print keys, so a key holding spaces,
 * line ends or any other byte still makes one token of one line. ASCII letters and digits and
 * `- . _ ~` stay as they are; every other byte becomes `%XX`, upper-case hex.
 */

const unreserved: readonly boolean[] = Array.from({ length: 256 }, (_, byte) => {
  const char = String.fromCharCode(byte);
  return /^[A-Za-z0-9\-._~]$/.test(char);
});

const escapes: readonly string[] = Array.from({ length: 256 }, (_, byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`);

export function uriEncode(key: Buffer): string {
  let text = '';
  for (const byte of key) text += unreserved[byte] ? String.fromCharCode(byte) : escapes[byte];
  return text;
}
