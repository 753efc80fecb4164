import { describe, expect, it } from 'vitest';
import { transferHandleMachine } from '../../machines/index.js';
import { combinations } from '../../src/explore/catalog.js';
import { CompiledStepper, compiledStepper } from '../../src/step/compiled.js';
import { lockstep } from './lockstep.js';

/**
 * The compiled stepper equals xstate on every explored edge of every combination the catalog lists
 * (shipped scenarios and regression variants alike), and the check can fail (canaries).
 */
// Half of the catalog's combinations here, the other half in oracle-rest.test.ts, so two workers share them.
describe('compiled stepper vs xstate (the oracle), on every explored edge', () => {
  for (const c of combinations().filter((_, i) => i % 2 === 0)) {
    it(`${c.scenario} / ${c.variant}`, { timeout: 120_000 }, () => {
      const r = lockstep(c, compiledStepper);
      expect(r.compared).toBeGreaterThan(0);
      expect(r.mismatches).toEqual([]);
    });
  }
});

describe('canary: a broken compiled table is caught', () => {
  const combo = { scenario: 'handleRelease/shm', variant: 'shipped' };

  it('a plan that drops an effect', () => {
    const broken = new CompiledStepper();
    const cm = broken.compile(transferHandleMachine);
    const victim = [...cm.allPlans()].find(({ plan }) => plan.ops.some((op) => op.k === 'effect' && op.type === 'postTransfer'));
    expect(victim).toBeDefined();
    victim!.plan.ops = victim!.plan.ops.filter((op) => !(op.k === 'effect' && op.type === 'postTransfer'));
    const r = lockstep(combo, broken);
    expect(r.mismatches.join('\n')).toMatch(/effects: xstate \[\{"type":"postTransfer"/);
  });

  it('a plan with the wrong target configuration', () => {
    const broken = new CompiledStepper();
    const cm = broken.compile(transferHandleMachine);
    const plans = [...cm.allPlans()];
    const victim = plans.find(({ plan }) => plan.ops.some((op) => op.k === 'effect' && op.type === 'postTransfer'))!;
    const other = plans.find(({ plan }) => plan.next !== victim.plan.next)!;
    victim.plan.next = other.plan.next;
    victim.plan.moved = true;
    const r = lockstep(combo, broken);
    expect(r.mismatches.join('\n')).toMatch(/value: xstate "inProgress"/);
  });

  it('an `accepts` that rules out an event xstate takes (the executor would skip a real step)', () => {
    const broken = new CompiledStepper();
    const cm = broken.compile(transferHandleMachine);
    cm.accepts = (_snap, eventType) => eventType !== 'POST';
    const r = lockstep(combo, broken);
    expect(r.mismatches.join('\n')).toMatch(/accepts\(POST\) is false, but xstate changed the snapshot/);
  });

  it('a `takes` that finds a guard closed where xstate takes the transition (the loop would skip a real step)', () => {
    const broken = new CompiledStepper();
    const cm = broken.compile(transferHandleMachine);
    const real = cm.takes.bind(cm);
    cm.takes = (snap, event) => event.type !== 'STATUS' && real(snap, event);
    const r = lockstep(combo, broken);
    expect(r.mismatches.join('\n')).toMatch(/takes\(STATUS\) is false, but xstate (changed the snapshot|emitted actions)/);
  });

  it('an in-place step that leaves the old state value in the snapshot (the executor steps in place)', () => {
    const broken = new CompiledStepper();
    const cm = broken.compile(transferHandleMachine);
    const real = cm.stepInPlace.bind(cm);
    cm.stepInPlace = (snap, event) => {
      const before = snap.value;
      const r = real(snap, event);
      (snap as { value: unknown }).value = before;
      return r;
    };
    const r = lockstep(combo, broken);
    expect(r.mismatches.join('\n')).toMatch(/in place: value: step "/);
  });

  // The generated code is what the executor runs: breaking it (not the plans) must be caught too.
  it('generated code whose guards are always open (a guarded transition taken regardless)', () => {
    const broken = new CompiledStepper({ rewriteGenerated: (src) => src.replace(/if \((k\d+\(\{)/g, 'if (true || $1') });
    const r = lockstep(combo, broken);
    expect(r.mismatches.length).toBeGreaterThan(0);
    expect(broken.compile(transferHandleMachine).generated.configs).toBeGreaterThan(0);
  });

  it('generated code that drops the first timer operation of a step', () => {
    const broken = new CompiledStepper({ rewriteGenerated: (src) => src.replaceAll('run.timers = [x];', 'void x;') });
    const r = lockstep(combo, broken);
    expect(r.mismatches.join('\n')).toMatch(/timers: xstate \[\{"op":"(arm|cancel)"/);
  });

  it('generated code that moves to the next configuration without counting the change', () => {
    const broken = new CompiledStepper({ rewriteGenerated: (src) => src.replace(/(run\.cfg = k\d+;) run\.version\+\+;/g, '$1') });
    const r = lockstep(combo, broken);
    expect(r.mismatches.join('\n')).toMatch(/snapshot identity|in place/);
  });

  it('the unbroken stepper passes the same combination', () => {
    expect(lockstep(combo, new CompiledStepper()).mismatches).toEqual([]);
  });
});
