// Per-prefix statistics: counted only while on, by the part of the key before ':', for a bounded number of prefixes.
import { PrefixStatistics } from '../../../src/server/prefix-stats';

const key = (text: string): Buffer => Buffer.from(text, 'latin1');

test('counts gets, hits, sets and deletes per prefix while on, nothing while off', () => {
  const prefixes = new PrefixStatistics();
  prefixes.recordGet(key('user:1'), true);
  expect(prefixes.dump()).toEqual([]);
  prefixes.enabled = true;
  prefixes.recordGet(key('user:1'), true);
  prefixes.recordGet(key('user:2'), false);
  prefixes.recordSet(key('user:3'));
  prefixes.recordDelete(key('session:a:b'));
  expect(prefixes.dump()).toEqual(['PREFIX user get 2 hit 1 set 1 del 0', 'PREFIX session get 0 hit 0 set 0 del 1']);
  prefixes.clear();
  expect(prefixes.dump()).toEqual([]);
});

test('a key without the delimiter, or with a NUL before it, counts nowhere; an empty prefix counts', () => {
  const prefixes = new PrefixStatistics();
  prefixes.enabled = true;
  prefixes.recordSet(key('plain'));
  prefixes.recordSet(key('a\0b:c'));
  prefixes.recordSet(key(':lead'));
  expect(prefixes.dump()).toEqual(['PREFIX  get 0 hit 0 set 1 del 0']);
});

test('past the bound, keys of new prefixes are not counted while known prefixes still are', () => {
  const prefixes = new PrefixStatistics(2);
  prefixes.enabled = true;
  prefixes.recordSet(key('a:1'));
  prefixes.recordSet(key('b:1'));
  prefixes.recordSet(key('c:1'));
  prefixes.recordSet(key('a:2'));
  expect(prefixes.dump()).toEqual(['PREFIX a get 0 hit 0 set 2 del 0', 'PREFIX b get 0 hit 0 set 1 del 0']);
});
