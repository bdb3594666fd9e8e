// Batched fan-out: the calls one turn makes leave together, cut by count and bytes; a reply that
// answers only the first items sends the rest again; a failed send fails every item of its batch.
import { RequestBatcher } from '../../../src/coordinator/batching';
import { ManualEnv } from '../../support/manual-env';

/** Lets every settled promise run its callbacks. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function batcher(env: ManualEnv, answer: (items: readonly string[]) => Promise<readonly string[]>, itemsMax = 3, bytesMax = 100) {
  const sent: string[][] = [];
  const batching = new RequestBatcher<string, string>(env, { itemsMax, bytesMax }, {
    send: (items) => {
      sent.push([...items]);
      return answer(items);
    },
    bytesOf: (item) => item.length,
  });
  return { batching, sent };
}

test('the calls of one turn leave once the turn is over, cut at itemsMax', async () => {
  const env = new ManualEnv();
  const { batching, sent } = batcher(env, async (items) => items.map((item) => item.toUpperCase()));
  const results = ['a', 'b', 'c', 'd'].map((item) => batching.add(item));
  expect(sent).toEqual([]);
  env.advance(0);
  expect(sent).toEqual([['a', 'b', 'c'], ['d']]);
  expect(await Promise.all(results)).toEqual(['A', 'B', 'C', 'D']);
});

test('an item larger than bytesMax goes alone, and batches are cut by bytes', () => {
  const env = new ManualEnv();
  const { batching, sent } = batcher(env, async (items) => [...items], 10, 5);
  for (const item of ['aa', 'bb', 'cccccccc', 'd']) void batching.add(item);
  env.advance(0);
  expect(sent).toEqual([['aa', 'bb'], ['cccccccc'], ['d']]);
});

test('a reply that answers the first items sends the rest again at once', async () => {
  const env = new ManualEnv();
  const { batching, sent } = batcher(env, async (items) => [items[0]]);
  const results = ['x', 'y', 'z'].map((item) => batching.add(item));
  env.advance(0);
  expect(await Promise.all(results)).toEqual(['x', 'y', 'z']);
  expect(sent).toEqual([['x', 'y', 'z'], ['y', 'z'], ['z']]);
});

test('a failed send fails every item of its batch, and only those', async () => {
  const env = new ManualEnv();
  const { batching } = batcher(env, async (items) => {
    if (items.includes('bad')) throw new Error('peer gone');
    return [...items];
  }, 2);
  const results = ['bad', 'b', 'c'].map((item) => batching.add(item).then((value) => value, (error: Error) => error.message));
  env.advance(0);
  await flush();
  expect(await Promise.all(results)).toEqual(['peer gone', 'peer gone', 'c']);
});
