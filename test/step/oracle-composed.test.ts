import { describe, expect, it } from 'vitest';
import { composedCombinations } from '../../src/explore/composedCatalog.js';
import { compiledStepper } from '../../src/step/compiled.js';
import { lockstepComposed } from './lockstep.js';

/** The composed catalog (both servers' machines through the production wiring), checked the same way. */
describe('compiled stepper vs xstate on every explored edge of the composed scenarios', () => {
  for (const c of composedCombinations()) {
    it(`${c.scenario} / ${c.variant}`, { timeout: 300_000 }, () => {
      const r = lockstepComposed(c, compiledStepper);
      expect(r.compared).toBeGreaterThan(0);
      expect(r.mismatches).toEqual([]);
    });
  }
});
