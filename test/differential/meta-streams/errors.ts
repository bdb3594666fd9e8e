/** Streams for the errors every meta command shares: keys, flags, tokens and their limits. */
import { base64Of, ms, opaqueOfLength, type MetaStream } from './commands';

/** Seventeen flags: as many as mg, md and ma may carry after the key; ms, with its length, one fewer. */
const seventeenFlags = 'c f h k l Oa s t u v N30 R30 T30 P L F1 I';
const sixteenFlags = 'c f h k l Oa s t u v N30 R30 T30 P L F1';

export const errorStreams: MetaStream[] = [
  {
    name: 'meta commands without a key, and lines that only look like meta commands',
    steps: () => ['mg\r\n', 'mg \r\nms\r\nmd\r\nma\r\n', '\r\n', 'mx key\r\nm\r\nMG key\r\nmgx key\r\n'],
  },
  {
    name: 'unknown flags, repeated flags and flag bytes over 126',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, '1'),
        `mg ${a} zz\r\nmg ${a} v v\r\nmg ${a} v k v\r\nmg ${a} E\r\n`,
        Buffer.concat([Buffer.from(`mg ${a} `), Buffer.from([0xe9]), Buffer.from(`\r\nmg ${a} v `), Buffer.from([0x7f]), Buffer.from('\r\n')]),
        `md ${a} zz\r\nma ${a} zz\r\n`,
        ms(a, 'x', 'zz') + ms(a, 'x', 'c c'),
        `mg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'up to twenty tokens a line are accepted, more refused, as are more than the tokenizer keeps',
    steps: (ns) => {
      const a = ns.key('a');
      const many = 'v '.repeat(30);
      return [
        ms(a, 'x', 'T0'),
        `mg ${a} ${seventeenFlags}\r\n`,
        `mg ${a} ${seventeenFlags} C1\r\nmg ${a} ${many}\r\n`,
        `ms ${a} 1 ${sixteenFlags}\r\ny\r\nms ${a} 1 ${seventeenFlags}\r\nz\r\n`,
        `md ${a} ${seventeenFlags} C1\r\nma ${a} ${seventeenFlags} C1\r\n`,
        `mg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'keys of 250 and 251 bytes on every meta command',
    steps: (ns) => {
      const fits = ns.keyOfLength(250);
      const long = ns.keyOfLength(251);
      return [
        ms(fits, '1', 'c') + `mg ${fits} k v\r\nma ${fits} v\r\nmd ${fits}\r\n`,
        `ms ${long} 1\r\nx\r\n`,
        `mg ${long} v\r\nmd ${long} q\r\nma ${long} N0\r\n`,
        `mg ${long} q\r\nmn\r\n`,
      ];
    },
  },
  {
    name: 'base64 keys: refused when invalid, unpadded, or over 250 bytes encoded though shorter decoded',
    steps: (ns) => {
      const fits = base64Of(Buffer.concat([Buffer.from(ns.key('b')), Buffer.alloc(186 - ns.key('b').length, 0xfe)]));
      const long = base64Of(Buffer.concat([Buffer.from(ns.key('b')), Buffer.alloc(189 - ns.key('b').length, 0xfe)]));
      return [
        'mg !!!! b\r\nmg abc b\r\nmg abcde b\r\n',
        `ms ${fits} 1 b\r\nx\r\nmg ${fits} b k v s\r\n`,
        `mg ${long} b\r\nms ${long} 1 b\r\nx\r\n`,
        `md !!!! b\r\nma !!!! b\r\n`,
      ];
    },
  },
  {
    name: 'opaque tokens of 32 bytes pass and of 33 are refused on every meta command',
    steps: (ns) => {
      const a = ns.key('a');
      const fits = opaqueOfLength(32);
      const long = opaqueOfLength(33);
      return [
        ms(a, '1', fits) + `mg ${a} ${fits}\r\nma ${a} ${fits}\r\nmd ${a} ${fits} I\r\n`,
        // Not ma on a hit: memcached applies the delta before it checks the opaque.
        ms(a, '1', long) + `mg ${a} ${long}\r\nma ${ns.key('missing')} ${long}\r\nmd ${a} ${long}\r\n`,
        `mg ${a} v\r\n`,
      ];
    },
  },
  {
    name: 'flag tokens that are not numbers, or are missing',
    steps: (ns) => {
      const a = ns.key('a');
      return [
        ms(a, '1'),
        `mg ${a} Tx\r\nmg ${a} N\r\nmg ${a} R1x\r\nmg ${a} T\r\nmg ${a} Cx\r\n`,
        `mg ${a} Dx\r\nmg ${a} Jx\r\nmg ${a} Fx\r\nmg ${a} MXX\r\n`,
        `mg ${a} v\r\n`,
      ];
    },
  },
];
