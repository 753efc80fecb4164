import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { appended } from '../../src/core/lists.js';

describe('appended (short lists built at their size)', () => {
  it('holds what a push would have, in order, from no list or an empty one, and never writes a shared empty list', () => {
    const EMPTY: { n: number }[] = [];
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.constantFrom('null', 'undefined', 'sentinel', 'literal'), (n, start) => {
        let list: { n: number }[] | null | undefined = start === 'null' ? null : start === 'undefined' ? undefined : start === 'sentinel' ? EMPTY : [];
        const model: { n: number }[] = [];
        for (let i = 0; i < n; i++) {
          const x = { n: i };
          const before = list;
          list = appended(list, x);
          model.push(x);
          expect(list).toEqual(model);
          for (let k = 0; k < model.length; k++) expect(list[k]).toBe(model[k]);
          // Up to three: a new list each time (the point of it); from four on, the list itself, pushed onto.
          if (model.length <= 3) expect(list).not.toBe(before);
          else expect(list).toBe(before);
        }
        expect(EMPTY).toEqual([]);
      }),
    );
  });
});
