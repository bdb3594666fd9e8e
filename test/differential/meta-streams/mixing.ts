/** Streams mixing meta and classic commands on one connection: shared items, cas uniques and noreply. */
import { lastCasUnique } from '../harness';
import { lastMetaCas } from '../meta-replies';
import { ms, set, type MetaStream } from './commands';

export const mixingStreams: MetaStream[] = [
  {
    name: 'ms then get and gets; a classic cas with the cas ms returned',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'hi', 'c F3'),
        `get ${a}\r\ngets ${a}\r\n`,
        (replies) => `cas ${a} 0 0 1 ${lastMetaCas(replies)}\r\nx\r\n`,
        `cas ${a} 0 0 1 1\r\ny\r\n`,
        `mg ${a} v c f\r\ngets ${a}\r\n`,
      ];
    },
  },
  {
    name: 'set then mg c; ms C with the cas gets returned',
    steps: (ns) => {
      const a = ns.key('a');
      return [set(a, 'ab', 5), `mg ${a} c f v\r\ngets ${a}\r\n`, (replies) => ms(a, 'cd', `C${lastCasUnique(replies)} c`), `gets ${a}\r\n`];
    },
  },
  {
    name: 'incr and decr then mg v; ma then get',
    steps: (ns) => {
      const n = ns.key('n');
      return [set(n, '5'), `incr ${n} 3\r\nmg ${n} v\r\n`, `ma ${n} D2 v\r\nget ${n}\r\n`, `decr ${n} 100\r\nmg ${n} v s\r\n`];
    },
  },
  {
    name: 'noreply classic commands between meta ones',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        `set ${a} 0 0 1 noreply\r\nq\r\nmg ${a} v\r\n`,
        `delete ${a} noreply\r\nmg ${a} v Oo1\r\n`,
        `incr ${a} 1 noreply\r\nadd ${a} 0 0 1 noreply\r\n7\r\nma ${a} v\r\n`,
        `append ${a} 0 0 1 noreply\r\n0\r\nms ${a} 1 MA q\r\n0\r\nmg ${a} v\r\nmn\r\n`,
      ];
    },
  },
  {
    name: 'meta q misses pipelined with classic commands',
    steps: (ns) => [set(ns.key('a'), '1') + `mg ${ns.key('missing')} q\r\nget ${ns.key('a')}\r\nmd ${ns.key('missing')} q\r\nma ${ns.key('a')} q\r\nversion\r\nget ${ns.key('a')}\r\n`],
  },
  {
    name: 'a stale item is still served by get; touch and gat change what mg t reports',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, 'old', 'T0') + `md ${a} I\r\nget ${a}\r\n`,
        `touch ${a} 100\r\nmg ${a} t\r\n`,
        `gat 0 ${a}\r\nmg ${a} t\r\n`,
        `mg ${a} T50\r\ngets ${a}\r\n`,
      ];
    },
  },
  {
    name: 'classic append and prepend on an item ms stored keep its flags',
    steps: (ns) => {
      const a = ns.key('a');
      return [ms(a, 'mid', 'F9'), `append ${a} 0 0 1\r\n>\r\nprepend ${a} 0 0 1\r\n<\r\nmg ${a} f v\r\nget ${a}\r\n`];
    },
  },
  {
    name: 'meta commands split one byte per packet, and ended by bare newlines',
    steps: (ns) => {
      const a = ns.key('a');
      return [...Array.from(`ms ${a} 5 T0 c\r\n12345\r\nmg ${a} v c\r\nma ${a} q\r\nmn\r\n`), `mg ${a} v\nmd ${a} q\nmg ${a}\nmn\n`];
    },
  },
  {
    name: 'classic delete of a vivified item; add after it',
    steps: (ns) => {
      const a = ns.key('a');
      return [`mg ${a} N30\r\nget ${a}\r\n`, `add ${a} 0 0 1\r\nx\r\ndelete ${a}\r\nadd ${a} 0 0 1\r\ny\r\nmg ${a} v\r\n`];
    },
  },
];
