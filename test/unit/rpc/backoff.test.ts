import { reconnectDelayMs } from '../../../src/rpc/backoff';
import { errorFromReply, parseAddress } from '../../../src/rpc/peer-connection';

const limits = { backoffBaseMs: 100, backoffMaxMs: 1_000 };

it('doubles the wait per failure up to the cap, half of it jittered', () => {
  // Proves the backoff grows exponentially, never exceeds its cap and never drops to nothing.
  expect(reconnectDelayMs(1, 0, limits)).toBe(50);
  expect(reconnectDelayMs(1, 0.999_999, limits)).toBe(100);
  expect(reconnectDelayMs(2, 0, limits)).toBe(100);
  expect(reconnectDelayMs(3, 0.5, limits)).toBe(300);
  expect(reconnectDelayMs(4, 0, limits)).toBe(400);
  expect(reconnectDelayMs(5, 0, limits)).toBe(500);
  expect(reconnectDelayMs(5, 0.999_999, limits)).toBe(1_000);
  expect(reconnectDelayMs(1_000_000, 0.999_999, limits)).toBe(1_000);
});

it('parses host:port addresses, IPv6 in brackets, and refuses others', () => {
  // Proves a peer address from membership is read as Node's connect needs it.
  expect(parseAddress('127.0.0.1:11011')).toEqual({ host: '127.0.0.1', port: 11011 });
  expect(parseAddress('[::1]:7')).toEqual({ host: '::1', port: 7 });
  expect(parseAddress('node-a.example:65535')).toEqual({ host: 'node-a.example', port: 65535 });
  for (const bad of ['127.0.0.1', ':11011', 'host:0', 'host:65536', 'host:1x', 'host:']) {
    expect(parseAddress(bad)).toBeUndefined();
  }
});

it('maps an error reply to its code, and an unknown code to KAI_INTERNAL', () => {
  // Proves only registry codes cross the wire as themselves, including inherited property names.
  expect(errorFromReply('KAI_QUORUM_UNMET', 'R=2').code).toBe('KAI_QUORUM_UNMET');
  expect(errorFromReply('KAI_QUORUM_UNMET', 'R=2').detail).toBe('R=2');
  expect(errorFromReply('KAI_FROM_THE_FUTURE', 'x').code).toBe('KAI_INTERNAL');
  expect(errorFromReply('toString', 'x').code).toBe('KAI_INTERNAL');
});
