import { SimRandom } from '../../sim/random';

function draws(random: SimRandom, count: number): number[] {
  return Array.from({ length: count }, () => random.nextUint32());
}

describe('SimRandom', () => {
  // The same seed gives the same stream; neighbouring seeds give unrelated ones.
  test('is a function of its seed', () => {
    expect(draws(new SimRandom(42), 100)).toEqual(draws(new SimRandom(42), 100));
    const first = draws(new SimRandom(1), 100);
    const second = draws(new SimRandom(2), 100);
    expect(first.filter((value, index) => value === second[index]).length).toBe(0);
  });

  // Floats stay in [0, 1) and average about one half; ints cover their whole range and no more.
  test('draws floats and ints in range', () => {
    const random = new SimRandom(7);
    const floats = Array.from({ length: 10_000 }, () => random.next());
    expect(Math.min(...floats)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...floats)).toBeLessThan(1);
    expect(floats.reduce((sum, value) => sum + value, 0) / floats.length).toBeCloseTo(0.5, 1);
    const ints = new Set(Array.from({ length: 1_000 }, () => random.int(-3, 3)));
    expect([...ints].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
  });

  // pick returns members, shuffle returns a permutation and leaves its input alone.
  test('picks and shuffles', () => {
    const random = new SimRandom(9);
    const items = ['a', 'b', 'c', 'd', 'e'];
    for (let round = 0; round < 50; round++) expect(items).toContain(random.pick(items));
    const shuffled = random.shuffle(items);
    expect([...shuffled].sort()).toEqual(items);
    expect(items).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(() => random.pick([])).toThrow('non-empty');
  });

  // A fork is deterministic, and draws from it leave the parent's stream as it would have been.
  test('forks independent streams', () => {
    const parent = new SimRandom(5);
    const fork = parent.fork();
    const forkDraws = draws(fork, 10);
    const parentDraws = draws(parent, 10);
    const again = new SimRandom(5);
    expect(draws(again.fork(), 10)).toEqual(forkDraws);
    expect(draws(again, 10)).toEqual(parentDraws);
  });

  // Seeds are 32-bit, as they are printed and typed back in.
  test('rejects seeds that are not 32-bit unsigned integers', () => {
    expect(() => new SimRandom(-1)).toThrow('32-bit');
    expect(() => new SimRandom(2 ** 32)).toThrow('32-bit');
    expect(() => new SimRandom(1.5)).toThrow('32-bit');
  });
});
