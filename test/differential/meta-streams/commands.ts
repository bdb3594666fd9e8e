/** What the meta streams are made of: the stream type and builders for the requests they send. */
import type { StreamStep } from '../harness';
import type { Namespace } from '../namespace';

/** Both servers take the same item size limit: memcached -I 1m, kai --max-item-size 1048576. */
export const valueBytesMax = 1024 * 1024;

/** A named stream of steps, played on its own connection with keys of its own. */
export interface MetaStream {
  readonly name: string;
  readonly steps: (ns: Namespace) => StreamStep[];
}

/** `ms` of `value` under `key`, with the flags given: the command line and its data block. */
export function ms(key: string, value: string, flags = ''): string {
  const length = Buffer.byteLength(value, 'latin1');
  return `ms ${key} ${length}${flags === '' ? '' : ` ${flags}`}\r\n${value}\r\n`;
}

/** The classic `set` of `value` under `key`. */
export function set(key: string, value: string, flags = 0, exptime = 0): string {
  return `set ${key} ${flags} ${exptime} ${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n`;
}

/** The base64 form of a key, for the `b` flag. */
export function base64Of(key: string | Buffer): string {
  return (typeof key === 'string' ? Buffer.from(key, 'latin1') : key).toString('base64');
}

export const unixNow = (): number => Math.floor(Date.now() / 1000);

/** A cas unique neither server hands out: memcached counts up from 1, kai's are 53-bit. */
export const unissuedCas = '987654321987654321';

/** An opaque token of `length` bytes, its leading `O` included (memcached's limit counts it). */
export function opaqueOfLength(length: number): string {
  return `O${'p'.repeat(length - 1)}`;
}
