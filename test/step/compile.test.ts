import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { assign, createMachine, emit, fromPromise, raise, setup, stateIn } from 'xstate';
import type { AnyStateMachine } from 'xstate';
import * as machines from '../../machines/index.js';
import { UnsupportedMachineError } from '../../src/step/compile.js';
import { CompiledStepper } from '../../src/step/compiled.js';
import { xstateStepper } from '../../src/step/xstate.js';
import { diffSteps } from './lockstep.js';

const compile = (m: AnyStateMachine) => new CompiledStepper().compile(m);

/** Step xstate and `compiled` side by side through `types` from the same start, each step compared; the compiled stepper's last step. */
function lockstep(m: AnyStateMachine, input: unknown, types: readonly string[], compiled: CompiledStepper) {
  let a = xstateStepper.initial(m, input);
  let b = compiled.initial(m, input);
  expect(diffSteps(a, b, false, false)).toEqual([]);
  for (const type of types) {
    const na = xstateStepper.step(m, a.snap, { type } as never);
    const nb = compiled.step(m, b.snap, { type } as never);
    expect(diffSteps(na, nb, na.snap === a.snap, nb.snap === b.snap), type).toEqual([]);
    a = na;
    b = nb;
  }
  return b;
}

describe('compiler', () => {
  it("stepInPlace's effects and timer operations stay the caller's past the machine's next steps", () => {
    // The result object is reused by the next step (the machine's Run); the lists in it must not be.
    const cm = compile(machines.transferHandleMachine);
    const semantics = { canAbortInFlight: true, releaseInFlightQuiesces: false };
    const kept: Array<{ effects: readonly unknown[]; timers: readonly unknown[]; text: string }> = [];
    for (let i = 0; i < 300; i++) {
      const snap = cm.own(cm.initial({ handleId: `h${i}`, semantics }).snap);
      const r = cm.stepInPlace(snap, { type: 'POST' } as never);
      expect(r.changed).toBe(true);
      expect(r.effects.length).toBeGreaterThan(0);
      kept.push({ effects: r.effects, timers: r.timers, text: JSON.stringify([r.effects, r.timers]) });
    }
    for (const [i, k] of kept.entries()) {
      expect(JSON.stringify([k.effects, k.timers])).toBe(k.text);
      expect(k.text).toContain(`"h${i}"`);
    }
  });

  it('a step taken inside another step of the same machine runs on its own, and steps keep matching past Run renewals', () => {
    // A guard that steps another actor of the same machine: the inner step must not take over the outer
    // step's Run (its configuration, context, effects). 600 steps cross two renewals of the reused Run.
    let nested: (() => void) | null = null;
    const m = setup({
      types: { context: {} as { n: number } },
      guards: {
        ok: () => {
          const f = nested;
          nested = null;
          f?.();
          nested = f;
          return true;
        },
      },
      actions: { tell: (_: unknown, _p: { n: number }) => {} },
    }).createMachine({
      context: { n: 0 },
      on: { INC: { guard: 'ok', actions: [assign({ n: ({ context }) => context.n + 1 }), { type: 'tell', params: ({ context }) => ({ n: context.n }) }] } },
    });
    const cs = new CompiledStepper();
    let inner = cs.initial(m, undefined).snap;
    nested = () => void (inner = cs.step(m, inner, { type: 'INC' }).snap);
    let outer = cs.initial(m, undefined).snap;
    for (let i = 1; i <= 600; i++) {
      const r = cs.step(m, outer, { type: 'INC' });
      outer = r.snap;
      expect((outer.context as { n: number }).n).toBe(i);
      expect(r.effects).toEqual([{ type: 'tell', params: { n: i } }]);
      expect((inner.context as { n: number }).n).toBe(i);
    }
  });

  it('compiles every production machine and regression variant ahead of time', () => {
    const all = Object.values(machines).filter((m): m is AnyStateMachine => typeof m === 'object' && m !== null && 'root' in m);
    expect(all.length).toBeGreaterThanOrEqual(8);
    for (const m of [...all, ...machines.REGRESSION_VARIANTS.map((v) => v.machine)]) {
      const c = compile(m);
      expect(c.configurationCount).toBeGreaterThan(1);
      expect(c.eagerPlans).toBeGreaterThan(0);
    }
  });

  it("a compiled snapshot answers as xstate's does: its JSON, its own fields, matches, hasTag, can and getMeta", () => {
    // The snapshot methods live on a shared prototype, not on each snapshot as in xstate: what a reader
    // of a snapshot sees must not change. Each production machine from its start and after each event
    // type it knows (every production machine and regression variant starts without an input; one that
    // needs one fails here instead of being skipped).
    const methods = ['matches', 'hasTag', 'can', 'getMeta', 'toJSON'];
    const all = Object.values(machines).filter((m): m is AnyStateMachine => typeof m === 'object' && m !== null && 'root' in m);
    const compiled = new CompiledStepper();
    let compared = 0;
    for (const m of all) {
      const a0 = xstateStepper.initial(m, undefined);
      const b0 = compiled.initial(m, undefined);
      const types = [...new Set((m.events as string[]).filter((t) => !t.startsWith('xstate.') && t !== '*'))];
      const pairs = [[a0.snap, b0.snap]];
      for (const type of types) pairs.push([xstateStepper.step(m, a0.snap, { type } as never).snap, compiled.step(m, b0.snap, { type } as never).snap]);
      for (const [a, b] of pairs as unknown as Array<[Record<string, (...x: unknown[]) => unknown>, Record<string, (...x: unknown[]) => unknown>]>) {
        expect(JSON.stringify(b), m.id).toBe(JSON.stringify(a));
        expect(Object.keys(b), m.id).toEqual(Object.keys(a).filter((k) => !methods.includes(k)));
        expect(b.matches!(a.value), m.id).toBe(true);
        const tags = [...(a.tags as unknown as Set<string>), 'no such tag'];
        for (const t of tags) expect(b.hasTag!(t), `${m.id} hasTag ${t}`).toBe(a.hasTag!(t));
        for (const type of types) expect(b.can!({ type }), `${m.id} can ${type}`).toBe(a.can!({ type }));
        expect(b.getMeta!(), m.id).toEqual(a.getMeta!());
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(20);
  });

  it('generates code for every configuration of every production machine and variant, leaving no selection to the interpreter', () => {
    const all = Object.values(machines).filter((m): m is AnyStateMachine => typeof m === 'object' && m !== null && 'root' in m);
    for (const m of [...all, ...machines.REGRESSION_VARIANTS.map((v) => v.machine)]) {
      const c = compile(m);
      const g = c.generateAll();
      expect(g.configs, m.id).toBe(c.configurationCount);
      expect(g.fallbacks, m.id).toEqual([]);
    }
  });

  it('interprets the plans in a process that forbids code generation from strings (same steps, nothing generated)', () => {
    // A child process with the flag: generation must fall back, not fail the step.
    const script = [
      `const M = await import(${JSON.stringify(pathToFileURL(resolve('dist/machines/index.js')).href)});`,
      `const { CompiledStepper } = await import(${JSON.stringify(pathToFileURL(resolve('dist/src/step/compiled.js')).href)});`,
      'const cm = new CompiledStepper().compile(M.transferHandleMachine);',
      "const snap = cm.own(cm.initial({ handleId: 'h', semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } }).snap);",
      "for (const e of [{ type: 'POST' }, { type: 'STATUS', status: 'DONE' }, { type: 'RELEASE_RESULT', accepted: true, quiesced: true }]) cm.stepInPlace(snap, e);",
      'console.log(JSON.stringify({ status: snap.status, output: snap.output, generated: cm.generated.configs }));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const r = JSON.parse(out) as { status: string; output: unknown; generated: number };
    expect(r.status).toBe('done');
    expect(r.generated).toBe(0);
    const cm = compile(machines.transferHandleMachine);
    const snap = cm.own(cm.initial({ handleId: 'h', semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } }).snap);
    for (const e of [{ type: 'POST' }, { type: 'STATUS', status: 'DONE' }, { type: 'RELEASE_RESULT', accepted: true, quiesced: true }]) cm.stepInPlace(snap, e as never);
    expect(r.output).toEqual(JSON.parse(JSON.stringify(snap.output)));
  });

  const refused: Array<[string, () => AnyStateMachine, RegExp]> = [
    ['invoke', () => setup({ actors: { p: fromPromise(async () => 1) } }).createMachine({ initial: 'a', states: { a: { invoke: { src: 'p' } } } }), /invoke/],
    ['history states', () => createMachine({ initial: 'a', states: { a: {}, h: { type: 'history' } } }), /history state/],
    ['built-in guards', () => createMachine({ initial: 'a', states: { a: { on: { GO: { guard: stateIn('a'), target: 'b' } } }, b: {} } }), /built-in guard/],
    ['immediate raise', () => createMachine({ initial: 'a', states: { a: { entry: raise({ type: 'X' }) } } }), /immediate raise/],
    ['emit', () => createMachine({ initial: 'a', states: { a: { entry: emit({ type: 'X' }) } } }), /xstate\.emit/],
    ['wildcard events', () => createMachine({ initial: 'a', states: { a: { on: { '*': 'b' } }, b: {} } }), /wildcard/],
    ['unprovided delays', () => createMachine({ initial: 'a', states: { a: { after: { someDelay: 'b' } }, b: {} } }), /delay 'someDelay'/],
    ['unimplemented guards', () => createMachine({ initial: 'a', states: { a: { on: { GO: { guard: 'nope', target: 'b' } } }, b: {} } }), /guard 'nope'/],
  ];
  for (const [what, make, message] of refused) {
    it(`refuses ${what} at load, naming it`, () => {
      const m = make();
      expect(() => compile(m)).toThrow(UnsupportedMachineError);
      expect(() => compile(m)).toThrow(message);
    });
  }

  it('matches xstate on a machine with reentry, parallel completion, always and done events', () => {
    const m = setup({
      types: { context: {} as { n: number; log: string[] }, events: {} as { type: 'GO' } | { type: 'AGAIN' } | { type: 'FINISH' } },
      actions: { note: (_: unknown, _p: { n: number }) => {} },
      delays: { soon: 5 },
    }).createMachine({
      context: { n: 0, log: [] },
      type: 'parallel',
      states: {
        left: {
          initial: 'idle',
          states: {
            idle: { after: { soon: 'busy' }, on: { GO: { target: 'busy', actions: assign({ n: ({ context }) => context.n + 1 }) } } },
            busy: {
              entry: { type: 'note', params: ({ context }) => ({ n: context.n }) },
              on: { AGAIN: { target: 'busy', reenter: true, actions: assign({ n: ({ context }) => context.n + 10 }) } },
              always: { guard: ({ context }) => context.n > 20, target: 'over' },
            },
            over: { type: 'final' },
          },
        },
        right: { initial: 'r', states: { r: { on: { FINISH: 'end' } }, end: { type: 'final', entry: 'note' } } },
      },
      output: ({ context }) => ({ n: context.n }),
    });
    // Generated code (the default) and the plans interpreted.
    for (const compiled of [new CompiledStepper(), new CompiledStepper({ generate: false })]) {
      const b = lockstep(m, undefined, ['GO', 'AGAIN', 'AGAIN', 'NOPE', 'FINISH', 'GO'], compiled);
      expect(b.snap.status).toBe('done');
      expect(b.snap.output).toEqual({ n: 21 });
    }
    expect(new CompiledStepper().compile(m).generateAll().fallbacks).toEqual([]);
  });

  it('a function-form assign merges as Object.assign does: known keys, a key the context did not start with, an empty partial', () => {
    // The generated merge is specialized to the keys of the first context made; a partial's other keys take its general branch.
    const m = setup({
      types: { context: {} as { n: number; s: string; extra?: number[] }, events: {} as { type: 'ONE' } | { type: 'NEW' } | { type: 'NONE' } | { type: 'BOTH' } },
    }).createMachine({
      context: ({ input }: { input: { n: number } }) => ({ n: input.n, s: 'a' }),
      initial: 'on',
      states: {
        on: {
          on: {
            ONE: { actions: assign(({ context }) => ({ n: context.n + 1 })) },
            NEW: { actions: assign(({ context }) => ({ extra: [context.n] })) },
            NONE: { actions: assign(() => ({})) },
            BOTH: { actions: assign(({ context }) => ({ s: `${context.s}b`, n: context.n * 2, extra: undefined })) },
          },
        },
      },
    });
    for (const compiled of [new CompiledStepper(), new CompiledStepper({ generate: false })]) {
      const b = lockstep(m, { n: 3 }, ['ONE', 'NEW', 'NONE', 'BOTH', 'ONE', 'NEW'], compiled);
      expect(b.snap.context).toEqual({ n: 9, s: 'ab', extra: [9] });
      // The keys in xstate's order too (a merge that wrote them in another order would differ here).
      expect(Object.keys(b.snap.context as object)).toEqual(['n', 's', 'extra']);
    }
  });
});
