/**
 * Seeded property testing without a library: a mulberry32 generator and helpers to draw inputs.
 * A property runs over many seeds; a failure names its seed, and `KAI_PROPERTY_SEED=<seed>` runs
 * that one seed alone to replay it.
 */

export class Random {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** mulberry32: a uniformly distributed number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)];
  }

  /** A new array with the items in random order (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const shuffled = [...items];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    return shuffled;
  }
}

/** The seeds a property runs over: `count` fixed ones, or the one named by KAI_PROPERTY_SEED. */
export function propertySeeds(count: number, first = 1): number[] {
  const replay = process.env.KAI_PROPERTY_SEED;
  if (replay !== undefined && replay !== '') return [Number(replay)];
  return Array.from({ length: count }, (_, i) => first + i);
}

/**
 * Runs `property` once per seed and collects failures, so one test reports every failing seed
 * with its message instead of stopping at the first.
 */
export function checkProperty(count: number, property: (random: Random) => void): void {
  const failures: string[] = [];
  for (const seed of propertySeeds(count)) {
    try {
      property(new Random(seed));
    } catch (error) {
      failures.push(`seed ${seed}: ${error instanceof Error ? error.message : String(error)}`);
      if (failures.length >= 5) break;
    }
  }
  if (failures.length === 0) return;
  throw new Error(`property failed (replay with KAI_PROPERTY_SEED=<seed>)\n${failures.join('\n')}`);
}

/** Throws with `message` when `condition` is false: assertions inside a property name the case. */
export function ensure(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
