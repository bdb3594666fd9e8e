// Parsers for the benchmarks' numeric flags: each rejects, in commander's words, a value outside
// its range, so a typo fails at once instead of running a benchmark with nonsense settings.

import { InvalidArgumentError } from 'commander';

/** A flag that takes any number in [minimum, maximum]. */
export function numberFlag(minimum: number, maximum: number): (text: string) => number {
  return parseWithin(minimum, maximum, false);
}

/** A flag that takes an integer in [minimum, maximum]. */
export function integerFlag(minimum: number, maximum: number): (text: string) => number {
  return parseWithin(minimum, maximum, true);
}

function parseWithin(minimum: number, maximum: number, integer: boolean): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!Number.isFinite(value) || value < minimum || value > maximum || (integer && !Number.isInteger(value))) {
      throw new InvalidArgumentError(`expected ${integer ? 'an integer' : 'a number'} in [${minimum}, ${maximum}]`);
    }
    return value;
  };
}
