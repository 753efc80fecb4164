import { describe, expect, it } from 'vitest';
import { combinations } from '../../src/explore/catalog.js';
import { compiledStepper } from '../../src/step/compiled.js';
import { lockstep } from './lockstep.js';

/** The other half of oracle.test.ts's combinations (a second file, so a second vitest worker runs it). */
describe('compiled stepper vs xstate (the oracle), on every explored edge (rest)', () => {
  for (const c of combinations().filter((_, i) => i % 2 === 1)) {
    it(`${c.scenario} / ${c.variant}`, { timeout: 120_000 }, () => {
      const r = lockstep(c, compiledStepper);
      expect(r.compared).toBeGreaterThan(0);
      expect(r.mismatches).toEqual([]);
    });
  }
});
