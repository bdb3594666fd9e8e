/**
 * A command's name as memcached's text protocol spells it (`gets`, `cas`, `incr`, `mg`), whatever
 * protocol carried it: the `command` label of the request latency metrics. A fixed set, so the
 * metrics' series stay bounded whatever clients send.
 */
import type { Command } from './command';

export function commandName(command: Command): string {
  switch (command.op) {
    case 'get':
      return command.withCas ? 'gets' : 'get';
    case 'gat':
      return command.withCas ? 'gats' : 'gat';
    case 'store':
      return command.mode;
    case 'arith':
      return command.incr ? 'incr' : 'decr';
    case 'refuse_store':
      return 'set';
    case 'meta_get':
      return 'mg';
    case 'meta_set':
      return 'ms';
    case 'meta_delete':
      return 'md';
    case 'meta_arith':
      return 'ma';
    case 'meta_noop':
      return 'mn';
    case 'meta_debug':
      return 'me';
    case 'tool':
      return command.tool.kind;
    default:
      return command.op;
  }
}
