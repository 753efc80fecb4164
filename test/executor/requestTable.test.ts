import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RequestTable } from '../../src/executor/requestTable.js';

describe('RequestTable (a server live requests, with the last one found kept)', () => {
  it('answers as a Map under random get, has, set (new and replacing) and delete, ids given as distinct string objects, across renewals of what it keeps', () => {
    // Ids are built anew at each use (`r${n}`): equal strings, not one object, as ids from the wire are.
    // Three ids and long runs, so that a get, has or delete of the id last found is common.
    const op = fc.record({ k: fc.constantFrom('get', 'get', 'get', 'has', 'set', 'delete'), n: fc.nat({ max: 2 }) });
    fc.assert(
      fc.property(fc.array(op, { minLength: 50, maxLength: 1200 }), (ops) => {
        const t = new RequestTable<{ n: number; v: number }>();
        const m = new Map<string, { n: number; v: number }>();
        let v = 0;
        for (const o of ops) {
          // '' is an id too (the table's mark for nothing kept is '').
          const id = o.n === 2 ? '' : ['r', String(o.n)].join('');
          if (o.k === 'get') expect(t.get(id)).toBe(m.get(id));
          else if (o.k === 'has') expect(t.has(id)).toBe(m.has(id));
          else if (o.k === 'set') {
            const e = { n: o.n, v: v++ };
            t.set(id, e);
            m.set(id, e);
          } else expect(t.delete(id)).toBe(m.delete(id));
          expect(t.size).toBe(m.size);
        }
        expect([...t.keys()]).toEqual([...m.keys()]);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps answering after many misses (its kept entry is renewed every 256), and a deleted id is gone at once', () => {
    const t = new RequestTable<number>();
    for (let i = 0; i < 1000; i++) t.set(`r${i}`, i);
    for (let round = 0; round < 3; round++) for (let i = 0; i < 1000; i++) expect(t.get(`r${(i * 7) % 1000}`)).toBe((i * 7) % 1000);
    expect(t.get('r5')).toBe(5);
    expect(t.delete('r5')).toBe(true);
    expect(t.get('r5')).toBeUndefined();
    expect(t.has('r5')).toBe(false);
    t.set('r5', 55);
    expect(t.get('r5')).toBe(55);
    t.set('r5', 56);
    expect(t.get('r5')).toBe(56);
  });
});
