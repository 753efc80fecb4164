import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeSyncNote, parseSyncNote } from '../../src/executor/syncNote.js';

const text = (s: string) => new TextEncoder().encode(s);
const share = fc.integer({ min: 1, max: 1_000_000 }).chain((of) => fc.record({ of: fc.constant(of), index: fc.integer({ min: 0, max: of - 1 }) }));

describe('sync notes (what a transfer tells the receiver when its data has landed)', () => {
  it('read back what was written, for any request id and share', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), share, (id, { index, of }) => {
        expect(parseSyncNote(encodeSyncNote({ id, index, of }))).toEqual({ id, index, of });
      }),
      { numRuns: 500 },
    );
  });

  it('refuse what is not a note: another sender, the old JSON, a damaged share', () => {
    for (const s of ['', 'r1', 's/', 's/0', 's/0/1', 's//1/r', 's/0//r', 's/1/1/r', 's/2/1/r', 's/0/0/r', 's/-1/2/r', 's/01/2/r', 's/0/01/r', 's/0x1/2/r', 's/ 0/2/r', 's/0/1e3/r', 'S/0/1/r', '{"id":"r1","index":0,"of":1}', 's/0/9999999999999999/r']) {
      expect(parseSyncNote(text(s)), s).toBeNull();
    }
    expect(parseSyncNote(text('s/0/1/'))).toEqual({ id: '', index: 0, of: 1 });
    expect(parseSyncNote(text('s/3/4/a/b/c'))).toEqual({ id: 'a/b/c', index: 3, of: 4 });
  });

  it('never throw on arbitrary bytes, and whatever they read as is a valid share that writes back the same text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.tuple(fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 6 })).map(([a, b]) => new Uint8Array([...text('s/'), ...a, 47, ...b]))), (bytes) => {
        const n = parseSyncNote(bytes);
        if (n === null) return;
        expect(Number.isSafeInteger(n.index) && n.index >= 0 && n.index < n.of).toBe(true);
        expect(new TextDecoder().decode(encodeSyncNote(n))).toBe(new TextDecoder().decode(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuse to write a share that does not exist', () => {
    for (const [index, of] of [[0, 0], [1, 1], [-1, 2], [0.5, 2], [0, Number.NaN]] as const) expect(() => encodeSyncNote({ id: 'r', index, of })).toThrow(RangeError);
  });
});
