import { describe, expect, it } from 'vitest';
import { contextSendMachine, generationReceiveMachine, transferHandleMachine } from '../../machines/index.js';
import { combinations } from '../../src/explore/catalog.js';
import { CompiledStepper } from '../../src/step/compiled.js';
import { lockstep } from './lockstep.js';

/**
 * The plans interpreted (`generate: false`, what `XFERSTATE_STEPPER=plans` runs, and what generated code
 * falls back to) against xstate on every explored edge too: the executor's default runs generated code
 * (oracle.test.ts, oracle-rest.test.ts), and the interpreter must not rot behind it.
 */
describe('interpreted plans vs xstate (the oracle), on every explored edge', () => {
  const interpreted = new CompiledStepper({ generate: false });
  for (const c of combinations()) {
    it(`${c.scenario} / ${c.variant}`, { timeout: 120_000 }, () => {
      const r = lockstep(c, interpreted);
      expect(r.compared).toBeGreaterThan(0);
      expect(r.mismatches).toEqual([]);
    });
  }
  it('ran no generated code', () => {
    for (const m of [transferHandleMachine, contextSendMachine, generationReceiveMachine]) expect(interpreted.compile(m).generated.configs).toBe(0);
  });
});
