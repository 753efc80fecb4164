import { describe, expect, it } from 'vitest';
import { createActor, setup } from 'xstate';
import { mutantsOf } from '../../src/mutate/operators.js';

/** A machine small enough to list every mutant by hand. */
const tiny = setup({
  types: { events: {} as { type: 'GO'; ok: boolean } | { type: 'STOP' } },
  actions: { a: () => {}, b: () => {}, log: () => {} },
  guards: { isOk: (_, p: { ok: boolean }) => p.ok },
  delays: { d: 100 },
}).createMachine({
  id: 'tiny',
  initial: 'idle',
  states: {
    idle: {
      entry: 'log',
      on: {
        GO: [
          { guard: { type: 'isOk', params: ({ event }) => ({ ok: event.ok }) }, target: 'busy', actions: ['a', 'b'] },
          { target: 'done' },
        ],
      },
    },
    busy: { on: { STOP: '#tiny.done' }, after: { d: { target: 'idle', actions: 'log' } } },
    done: { type: 'final' },
  },
});

describe('mutation operators', () => {
  it('enumerate every mechanical mutant of a tiny machine, in definition order, with stable names', () => {
    expect(mutantsOf(tiny).map((m) => m.name)).toEqual([
      'tiny: drop action log in idle entry',
      'tiny: drop action a in idle GO[0]',
      'tiny: drop action b in idle GO[0]',
      'tiny: swap actions a,b in idle GO[0]',
      'tiny: retarget idle GO[0] busy → done',
      'tiny: drop guard isOk in idle GO[0]',
      'tiny: remove branch isOk in idle GO[0]',
      'tiny: retarget idle GO[1] done → idle',
      'tiny: drop deadline d in busy',
      'tiny: retarget busy STOP done → idle',
      'tiny: drop action log in busy after d',
      'tiny: retarget busy after d idle → busy',
    ]);
    // Every sibling on request; the default takes the next one in definition order.
    expect(mutantsOf(tiny, { allTargets: true }).filter((m) => m.operator === 'retarget').map((m) => m.name)).toContain('tiny: retarget idle GO[0] busy → idle');
    expect(mutantsOf(tiny).map((m) => m.name)).toEqual(mutantsOf(tiny).map((m) => m.name));
  });

  const run = (name: string, events: Array<{ type: 'GO'; ok: boolean } | { type: 'STOP' }>) => {
    const m = mutantsOf(tiny).find((x) => x.name === name)!.build();
    expect(m.id).toBe('tiny');
    const a = createActor(m).start();
    for (const e of events) a.send(e);
    return a.getSnapshot().value;
  };

  it('build mutants from the same config and implementations, changed only where the name says', () => {
    expect(createActor(tiny).start().getSnapshot().value).toBe('idle');
    const original = createActor(tiny).start();
    original.send({ type: 'GO', ok: false });
    expect(original.getSnapshot().value).toBe('done');
    // The guard dropped: a GO that is not ok now takes the first branch.
    expect(run('tiny: drop guard isOk in idle GO[0]', [{ type: 'GO', ok: false }])).toBe('busy');
    // The guarded branch removed: even an ok GO falls through to the last one.
    expect(run('tiny: remove branch isOk in idle GO[0]', [{ type: 'GO', ok: true }])).toBe('done');
    // An absolute target is retargeted within its parent.
    expect(run('tiny: retarget busy STOP done → idle', [{ type: 'GO', ok: true }, { type: 'STOP' }])).toBe('idle');
    expect(mutantsOf(tiny).find((x) => x.name === 'tiny: drop deadline d in busy')!.build().root.states.busy!.after).toHaveLength(0);
    expect(tiny.root.states.busy!.after).toHaveLength(1);
  });
});
