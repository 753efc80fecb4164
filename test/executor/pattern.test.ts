import fc from 'fast-check';
import { expect, it } from 'vitest';
import { fillBlock, PatternChecker } from '../../src/executor/pattern.js';

it('a filled block verifies only against its own (request, epoch, block index)', () => {
  const b = new Uint8Array(64 * 1024);
  const c = new PatternChecker();
  fillBlock(b, 7, 3, 2);
  expect(c.verify(b, 7, 3, 2)).toBe(true);
  expect(c.verify(b, 8, 3, 2)).toBe(false);
  expect(c.verify(b, 7, 4, 2)).toBe(false);
  expect(c.verify(b, 7, 3, 1)).toBe(false);
});

it('any single corrupted byte anywhere in the block is detected', () => {
  const c = new PatternChecker();
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 512 }), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 0xffff }), (words, pos, flip, epoch) => {
      const b = new Uint8Array(words * 8);
      fillBlock(b, 42, epoch, 5);
      b[pos % b.length] ^= flip;
      expect(c.verify(b, 42, epoch, 5)).toBe(false);
    }),
    { numRuns: 500 },
  );
});

it('a stale block of the previous lease epoch, or of another request, is detected', () => {
  const b = new Uint8Array(4096);
  const c = new PatternChecker();
  fillBlock(b, 11, 1, 0);
  expect(c.verify(b, 11, 2, 0)).toBe(false);
  fillBlock(b.subarray(0, 2048), 11, 2, 0);
  expect(c.verify(b, 11, 2, 0)).toBe(false); // half new, half stale
});
