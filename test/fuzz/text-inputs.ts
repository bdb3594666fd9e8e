/**
 * Structure-aware input for the text protocol: valid command lines (with their data blocks)
 * drawn at random, and the same with their tokens mutated: numbers at the edges of their
 * widths, announced lengths that disagree with the block, keys at and over the length limit,
 * misplaced noreply, too many or too few tokens, odd separators and line ends.
 */
import type { SimRandom } from '../sim/random';
import { damagedStream, meaningfulNoise, mutateOneToThreeTimes } from './bytes';

/** One command line as tokens, and the data block a storage command sends after it. */
export interface TextCommand {
  tokens: string[];
  /** Without its CRLF; undefined when the command has no block. */
  block: Buffer | undefined;
  /** What ends the line. */
  lineEnd: string;
  /** What ends the block. */
  blockEnd: string;
}

export interface TextInputOptions {
  /** Draw no command that removes data other clients may hold (flush_all). */
  readonly harmlessOnly?: boolean;
  /** Every generated key starts with this, so a node's other clients never share one. */
  readonly keyPrefix?: string;
  /**
   * Draw keys from this many only (prefix and a number), so a long run against a node stores a
   * bounded amount of data; absent, keys are random.
   */
  readonly keyCount?: number;
  /** Values are drawn up to this size, with edge cases just over it. */
  readonly valueBytesMax: number;
}

const storageNames = ['set', 'add', 'replace', 'append', 'prepend', 'cas'];
const retrievalNames = ['get', 'gets', 'bget', 'gat', 'gats'];
const otherLines = [
  'version', 'stats', 'stats items', 'stats slabs', 'verbosity 1', 'quit', 'mn', 'mg k v', 'ms k 2', 'me k', 'GET / HTTP/1.0', 'POST /x HTTP/1.1',
];
const numberTokens = [
  '0', '1', '-1', '+1', '-0', '00', '007', '2147483645', '2147483646', '2147483647', '2147483648', '-2147483648',
  '-2147483649', '4294967295', '4294967296', '18446744073709551615', '18446744073709551616', '99999999999999999999999',
  '1e3', '0x10', '1.5', ' ', '', 'abc', '\t1', '1\r',
];
const lineEnds = ['\r\n', '\r\n', '\r\n', '\n', '\r\r\n', '\n\r\n', ' \r\n', '\0\r\n'];
const blockEnds = ['\r\n', '\r\n', '\r\n', '\n', '\r', 'xx', '\r\n\r\n', ''];

function key(random: SimRandom, options: TextInputOptions): string {
  const prefix = options.keyPrefix ?? '';
  const roll = random.int(0, 9);
  // Keys at and just over memcached's 250-byte limit.
  if (roll === 0) return (prefix + 'k'.repeat(250)).slice(0, random.pick([249, 250, 251, 300]));
  if (options.keyCount !== undefined) return prefix + String(random.int(0, options.keyCount - 1));
  const length = random.int(1, 12);
  let text = prefix;
  for (let index = 0; index < length; index++) text += String.fromCharCode(random.int(0x21, 0x7e));
  return text;
}

function value(random: SimRandom, options: TextInputOptions): Buffer {
  const roll = random.int(0, 19);
  if (roll === 0) return Buffer.alloc(options.valueBytesMax + random.int(0, 2), 0x76);
  if (roll === 1) return Buffer.alloc(random.int(0, options.valueBytesMax), 0x76);
  if (roll === 2) return Buffer.from(String(random.int(0, 1_000_000)));
  // Values that hold line ends and binary bytes, which the block framing must carry as they are.
  return meaningfulNoise(random, random.int(0, 32));
}

function number(random: SimRandom, min: number, max: number): string {
  return String(random.int(min, max));
}

/** A well-formed command, valid as memcached reads it. */
export function validTextCommand(random: SimRandom, options: TextInputOptions): TextCommand {
  const plain = (tokens: string[]): TextCommand => ({ tokens, block: undefined, lineEnd: '\r\n', blockEnd: '\r\n' });
  const noreply = (): string[] => (random.chance(0.2) ? ['noreply'] : []);
  switch (random.int(0, 9)) {
    case 0:
    case 1:
    case 2: {
      const name = random.pick(storageNames);
      const block = value(random, options);
      const tokens = [name, key(random, options), number(random, 0, 0xffffffff), number(random, -1, 100_000), String(block.length)];
      if (name === 'cas') tokens.push(number(random, 0, 2 ** 40));
      return { tokens: [...tokens, ...noreply()], block, lineEnd: '\r\n', blockEnd: '\r\n' };
    }
    case 3:
    case 4: {
      const name = random.pick(retrievalNames);
      const keys = Array.from({ length: random.int(1, 8) }, () => key(random, options));
      return plain(name.startsWith('gat') ? [name, number(random, -1, 1000), ...keys] : [name, ...keys]);
    }
    case 5:
      return plain(['delete', key(random, options), ...(random.chance(0.3) ? ['0'] : []), ...noreply()]);
    case 6:
      return plain([random.pick(['incr', 'decr']), key(random, options), number(random, 0, 2 ** 40), ...noreply()]);
    case 7:
      return plain(['touch', key(random, options), number(random, -1, 100_000), ...noreply()]);
    case 8:
      if (!options.harmlessOnly && random.chance(0.3)) {
        return plain(['flush_all', ...(random.chance(0.5) ? [number(random, 0, 100)] : []), ...noreply()]);
      }
      return plain(random.pick(otherLines).split(' '));
    default:
      return plain(random.pick(otherLines).split(' '));
  }
}

type TextMutation = (random: SimRandom, command: TextCommand, options: TextInputOptions) => void;

const textMutations: readonly TextMutation[] = [
  // A token replaced by a number at an edge, or by garbage.
  (random, command) => {
    if (command.tokens.length < 2) return;
    command.tokens[random.int(1, command.tokens.length - 1)] = random.pick(numberTokens);
  },
  // The announced length off by a little or by a lot, so the block and the next line disagree.
  (random, command, options) => {
    if (!command.block) return;
    const lengthAt = command.tokens[0] === 'cas' ? command.tokens.length - 2 : 4;
    if (lengthAt < 1 || lengthAt >= command.tokens.length) return;
    const announced = command.block.length + random.pick([-2, -1, 1, 2, 100, options.valueBytesMax, 2 ** 31 - 3]);
    command.tokens[lengthAt] = String(announced);
  },
  // Tokens added: past memcached's 24-token count, or a misplaced noreply.
  (random, command) => {
    const extra = random.int(1, 30);
    for (let index = 0; index < extra; index++) {
      const at = random.int(Math.min(1, command.tokens.length), command.tokens.length);
      command.tokens.splice(at, 0, random.pick(['noreply', 'x', '0']));
    }
  },
  // Tokens dropped.
  (random, command) => {
    const dropped = random.int(1, Math.max(1, command.tokens.length - 1));
    for (let index = 0; index < dropped && command.tokens.length > 0; index++) command.tokens.splice(random.int(0, command.tokens.length - 1), 1);
  },
  // Separators: several spaces, tabs, leading spaces (memcached looks past at most 100).
  (random, command) => {
    const separator = random.pick(['  ', '\t', ' \t ', ' '.repeat(random.int(1, 120))]);
    command.tokens = [command.tokens.join(separator)];
    if (random.chance(0.5)) command.tokens[0] = ' '.repeat(random.int(90, 110)) + command.tokens[0];
  },
  // Line and block ends other than CRLF.
  (random, command) => {
    command.lineEnd = random.pick(lineEnds);
    command.blockEnd = random.pick(blockEnds);
  },
  // The command name changed to another command's, so arity and fields disagree.
  (random, command, options) => {
    const names = [...storageNames, ...retrievalNames, 'delete', 'incr', 'decr', 'touch', 'verbosity', 'stats', 'version'];
    if (!options.harmlessOnly) names.push('flush_all');
    command.tokens[0] = random.pick(names);
  },
  // A key replaced by a long one, or one with a control byte.
  (random, command) => {
    if (command.tokens.length < 2) return;
    command.tokens[1] = random.pick(['k'.repeat(random.int(240, 300)), 'a\x01b', 'a\x00b', 'noreply', '\x7f']);
  },
  // A long line: over memcached's 2048 bytes without a newline, or over its 16 KiB read buffer.
  (random, command) => {
    command.tokens.push('y'.repeat(random.pick([2040, 2049, 4096, 16 * 1024 + 1])));
  },
];

/** A valid command with one to three of its tokens, lengths or line ends mutated. */
export function mutatedTextCommand(random: SimRandom, options: TextInputOptions): TextCommand {
  const command = validTextCommand(random, options);
  mutateOneToThreeTimes(random, () => random.pick(textMutations)(random, command, options));
  return command;
}

export function encodeTextCommand(command: TextCommand): Buffer {
  const line = Buffer.from(command.tokens.join(' ') + command.lineEnd, 'latin1');
  if (!command.block) return line;
  return Buffer.concat([line, command.block, Buffer.from(command.blockEnd, 'latin1')]);
}

/**
 * A stream of `commandsMax` commands at most, each valid or mutated, then possibly truncated or
 * garbled as a whole, or replaced by noise.
 */
export function textStream(random: SimRandom, options: TextInputOptions, commandsMax = 12): Buffer {
  const commands: Buffer[] = [];
  const count = random.int(1, commandsMax);
  for (let index = 0; index < count; index++) {
    const command = random.chance(0.5) ? validTextCommand(random, options) : mutatedTextCommand(random, options);
    commands.push(encodeTextCommand(command));
  }
  return damagedStream(random, Buffer.concat(commands), () => meaningfulNoise(random, random.int(0, 512)));
}
