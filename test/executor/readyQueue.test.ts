import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReadyQueue } from '../../src/executor/readyQueue.js';

describe('ReadyQueue (the executor loop ready and batch sets)', () => {
  it('behaves as an insertion-ordered Set under random add, delete and take-first, with two queues sharing the actors', () => {
    const op = fc.record({ q: fc.constantFrom(0 as const, 1 as const), k: fc.constantFrom('add', 'delete', 'shift', 'has'), who: fc.nat({ max: 9 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const actors = Array.from({ length: 10 }, (_, id) => ({ id, q0: 0, q1: 0 }));
        const queues = [new ReadyQueue<(typeof actors)[number]>(0), new ReadyQueue<(typeof actors)[number]>(1)];
        const models = [new Set<number>(), new Set<number>()];
        for (const o of ops) {
          const q = queues[o.q]!;
          const m = models[o.q]!;
          const a = actors[o.who]!;
          if (o.k === 'add') (q.add(a), m.add(a.id));
          else if (o.k === 'delete') expect(q.delete(a)).toBe(m.delete(a.id));
          else if (o.k === 'has') expect(q.has(a)).toBe(m.has(a.id));
          else {
            const first = m.values().next();
            if (!first.done) m.delete(first.value);
            expect(q.shift()?.id).toBe(first.done ? undefined : first.value);
          }
          expect(q.size).toBe(m.size);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps memory proportional to the actors queued when actors are added and removed without being taken', () => {
    const q = new ReadyQueue<{ q0: number; q1: number }>(0);
    const keep = { q0: 0, q1: 0 };
    q.add(keep);
    for (let i = 0; i < 10_000; i++) {
      const x = { q0: 0, q1: 0 };
      q.add(x);
      q.delete(x);
    }
    expect(q.size).toBe(1);
    expect((q as unknown as { items: unknown[] }).items.length).toBeLessThan(300);
    expect((q as unknown as { tail: number }).tail).toBeLessThan(300);
    expect(q.shift()).toBe(keep);
  });
});
