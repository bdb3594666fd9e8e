/** kai's version, and the version string `version` answers. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const kaiVersion: string = (require('../../../package.json') as { version: string }).version;

/** The memcached release whose protocol kai answers as, reply for reply (docs/protocol.md). */
export const memcachedProtocolVersion = '1.6.18';

/**
 * What `version` (text and binary) and `stats` report: memcached's protocol version first, then
 * kai's own. Clients gate features on the leading numbers: libmemcached reads major.minor.micro
 * with strtol and refuses a major of 0 (so kai's own 0.x would make it give up on the server), and
 * memccapable expects 1.6 or later before it tests 1.6 behaviour. The suffix is one strtol stops
 * at; the whole stays under libmemcached's 32-byte buffer for the binary VERSION body.
 */
export const reportedVersion = `${memcachedProtocolVersion}-kai-${kaiVersion}`;
