// Proves each start-up failure an operator meets is one line that names the flag to change, and that others keep their stack for the log.
import { startFailure } from '../../../src/cli/start-errors';
import { KaiError } from '../../../src/errors';
import { ListenFailure, type ListenAttempt } from '../../../src/server/listen-failure';

const memcache: ListenAttempt = { listener: 'memcache', host: '127.0.0.1', port: 11211, hostSetting: 'hostname', portSetting: 'memcachePort' };
const internal: ListenAttempt = { listener: 'internal', host: '10.0.0.9', port: 11011, hostSetting: 'internalHost', portSetting: 'port' };

test.each([
  [memcache, 'EADDRINUSE', 'memcache port 11211 on 127.0.0.1 is in use: choose another with --memcache-port'],
  [internal, 'EADDRINUSE', 'internal API port 11011 on 10.0.0.9 is in use: choose another with --port'],
  [
    { ...memcache, port: 80 },
    'EACCES',
    'memcache port 80 on 127.0.0.1 is not allowed to this user (ports below 1024 need root or CAP_NET_BIND_SERVICE): choose another with --memcache-port',
  ],
  [
    internal,
    'EADDRNOTAVAIL',
    'cannot listen on 10.0.0.9 for the internal API port: no interface of this machine has that address: choose another with --internal-host',
  ],
  [memcache, 'ENOTFOUND', 'cannot listen on 127.0.0.1 for the memcache port: the name does not resolve: choose another with --hostname'],
])('%o failing with %s', (attempt, code, line) => {
  expect(startFailure(new ListenFailure(attempt, code, `listen ${code}`))).toEqual({ line, explained: true });
});

test('a listen failure without a system code says what it was, and keeps its stack', () => {
  expect(startFailure(new ListenFailure(memcache, undefined, 'boom'))).toEqual({
    line: 'cannot listen on the memcache port 11211 on 127.0.0.1: boom',
    explained: false,
  });
});

test("the node's own refusals keep their words without the protocol's prefix", () => {
  const refusal = new KaiError('KAI_DATA_DIR_IN_USE', '/d is used by kai process 7');
  expect(startFailure(refusal)).toEqual({ line: 'cannot start: /d is used by kai process 7', explained: true });
  expect(startFailure(new Error('unexpected\n  at somewhere'))).toEqual({ line: 'cannot start: unexpected at somewhere', explained: false });
});
