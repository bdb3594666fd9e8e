// A connection's requests on a key start after the earlier ones on it, others at once; a barrier holds back every later one.
import { KeyOrder } from '../../../src/server/key-order';

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((resolved, rejected) => {
    resolve = resolved;
    reject = rejected;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run. */
function settleCallbacks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Whether `promise` has settled once pending callbacks have run. */
async function hasSettled(promise: Promise<unknown> | undefined): Promise<boolean> {
  if (!promise) return true;
  let settled = false;
  const mark = (): void => {
    settled = true;
  };
  promise.then(mark, mark);
  await settleCallbacks();
  return settled;
}

const key = (name: string): Buffer => Buffer.from(name, 'latin1');

describe('KeyOrder', () => {
  // With nothing in flight, a request starts at once.
  test('nothing ahead', () => {
    const order = new KeyOrder();
    expect(order.ahead([key('a')])).toBeUndefined();
    expect(order.ahead([])).toBeUndefined();
  });

  // A request on a key waits for the one in flight on it; one on another key does not.
  test('requests on a key wait for earlier ones, others do not', async () => {
    const order = new KeyOrder();
    const first = deferred();
    order.track([key('a')], first.promise);
    const sameKey = order.ahead([key('a')]);
    expect(sameKey).toBeDefined();
    expect(order.ahead([key('b')])).toBeUndefined();
    expect(await hasSettled(sameKey)).toBe(false);
    first.resolve();
    expect(await hasSettled(sameKey)).toBe(true);
  });

  // Each request waits for the last one tracked on its key, so a pipeline on one key runs one after another.
  test('a chain on one key', async () => {
    const order = new KeyOrder();
    const started: string[] = [];
    const requests = ['set', 'get', 'append', 'get'].map((name) => ({ name, done: deferred() }));
    for (const request of requests) {
      const ahead = order.ahead([key('a')]);
      const run = (ahead ?? Promise.resolve()).then(() => {
        started.push(request.name);
        return request.done.promise;
      });
      order.track([key('a')], run);
    }
    await settleCallbacks();
    expect(started).toEqual(['set']);
    for (let index = 0; index < requests.length; index++) {
      requests[index].done.resolve();
      await settleCallbacks();
      expect(started).toEqual(requests.slice(0, Math.min(index + 2, requests.length)).map((request) => request.name));
    }
  });

  // A request on several keys waits for every one of them, and a failed request lets the next go as a finished one does.
  test('several keys, and failures', async () => {
    const order = new KeyOrder();
    const onA = deferred();
    const onB = deferred();
    order.track([key('a')], onA.promise);
    order.track([key('b')], onB.promise);
    const both = order.ahead([key('a'), key('b'), key('c')]);
    onA.reject(new Error('quorum not met'));
    expect(await hasSettled(both)).toBe(false);
    onB.resolve();
    expect(await hasSettled(both)).toBe(true);
    // The waiting promise resolves whatever the requests it waited for did.
    await expect(both).resolves.toBeUndefined();
  });

  // A barrier (flush_all) holds back every later request, whatever its keys, until it settles.
  test('a barrier holds back all later requests', async () => {
    const order = new KeyOrder();
    const flush = deferred();
    order.trackBarrier(flush.promise);
    const anyKey = order.ahead([key('x')]);
    const noKey = order.ahead([]);
    expect(anyKey).toBeDefined();
    expect(noKey).toBeDefined();
    // A request behind it on a key also has the barrier ahead, with the key's own requests.
    const onA = deferred();
    order.track([key('a')], onA.promise);
    const behindBoth = order.ahead([key('a')]);
    flush.resolve();
    expect(await hasSettled(anyKey)).toBe(true);
    expect(await hasSettled(noKey)).toBe(true);
    expect(await hasSettled(behindBoth)).toBe(false);
    onA.resolve();
    expect(await hasSettled(behindBoth)).toBe(true);
    expect(order.ahead([key('x')])).toBeUndefined();
  });

  // Only requests in flight are held: once every one settles, the map is empty and nothing is ahead.
  test('the map empties when requests settle', async () => {
    const order = new KeyOrder();
    const requests = Array.from({ length: 100 }, (_, index) => ({ keys: [key(`k${index % 10}`), key('shared')], done: deferred() }));
    for (const request of requests) order.track(request.keys, request.done.promise);
    expect(order.size).toBe(11);
    requests.forEach((request, index) => (index % 2 === 0 ? request.done.resolve() : request.done.reject(new Error('failed'))));
    await settleCallbacks();
    expect(order.size).toBe(0);
    expect(order.ahead([key('k0'), key('shared')])).toBeUndefined();
    // Nothing is held for a request with no keys.
    order.track([], deferred().promise);
    expect(order.size).toBe(0);
  });

  // A key stays held by its latest request: an earlier one settling does not release it.
  test('an earlier request settling keeps the key for the later one', async () => {
    const order = new KeyOrder();
    const first = deferred();
    const second = deferred();
    order.track([key('a')], first.promise);
    order.track([key('a')], second.promise);
    first.resolve();
    await settleCallbacks();
    expect(order.size).toBe(1);
    const third = order.ahead([key('a')]);
    expect(await hasSettled(third)).toBe(false);
    second.resolve();
    expect(await hasSettled(third)).toBe(true);
    expect(order.size).toBe(0);
  });
});
