/**
 * A seeded pseudo-random generator for simulations: xoshiro128** (Blackman and Vigna), seeded
 * through splitmix32 so that nearby seeds (1, 2, 3...) still give unrelated streams. Everything
 * random in a simulated run comes from one of these, so a run replays exactly from its seed.
 */
import { assert } from '../../src/errors';

/** The largest seed accepted: seeds are printed and typed back in, so they stay 32-bit. */
export const seedMax = 0xffff_ffff;

function splitmix32(state: number): { readonly value: number; readonly next: number } {
  const next = (state + 0x9e3779b9) >>> 0;
  let mixed = next;
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b);
  mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
  return { value: (mixed ^ (mixed >>> 16)) >>> 0, next };
}

function rotateLeft(value: number, bits: number): number {
  return ((value << bits) | (value >>> (32 - bits))) >>> 0;
}

export class SimRandom {
  private readonly state = new Uint32Array(4);

  constructor(readonly seed: number) {
    assert(Number.isInteger(seed) && seed >= 0 && seed <= seedMax, `seed ${seed} is a 32-bit unsigned integer`);
    let mix = seed;
    for (let index = 0; index < 4; index++) {
      const drawn = splitmix32(mix);
      this.state[index] = drawn.value;
      mix = drawn.next;
    }
    // xoshiro must not start from all zeroes; splitmix32 makes that practically impossible.
    if (this.state.every((word) => word === 0)) this.state[0] = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const state = this.state;
    const result = Math.imul(rotateLeft(Math.imul(state[1], 5) >>> 0, 7), 9) >>> 0;
    const shifted = (state[1] << 9) >>> 0;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= shifted;
    state[3] = rotateLeft(state[3], 11);
    return result;
  }

  /** A uniformly distributed number in [0, 1). */
  next(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** A uniformly distributed integer in [min, max], both included. */
  int(min: number, max: number): number {
    assert(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max, `int range [${min}, ${max}] is valid`);
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with the given probability. */
  chance(probability: number): boolean {
    return probability > 0 && this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'pick from a non-empty list');
    return items[this.int(0, items.length - 1)];
  }

  /** A shuffled copy (Fisher-Yates); the input is left as it is. */
  shuffle<T>(items: readonly T[]): T[] {
    const copy = [...items];
    for (let index = copy.length - 1; index > 0; index--) {
      const other = this.int(0, index);
      [copy[index], copy[other]] = [copy[other], copy[index]];
    }
    return copy;
  }

  /**
   * An independent generator derived from this one. Giving each node and the network their own
   * stream means one more random draw in a node does not reshuffle every network delay after it.
   */
  fork(): SimRandom {
    return new SimRandom(this.nextUint32());
  }
}
