import { assign, createMachine, raise, setup } from 'xstate';
import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import { describe, expect, it } from 'vitest';
import { pureInitialTransition, pureTransition } from '../../src/explore/world.js';
import { OutsideReads, newReads, trackedMachine } from '../../src/mutate/reads.js';
import { StepRecorder, alikeModuloWriteOnly, firstDifference } from '../../src/mutate/steps.js';
import { mutantNamed } from '../../src/mutate/catalog.js';
import type { Baseline, ScenarioOutcome } from '../../src/mutate/explore.js';
import { computeBaseline, exploreMutant } from '../../src/mutate/explore.js';
import { classify } from '../../src/mutate/run.js';
import { admissionMachine, blockLeaseMachine, FinishedRecords, peerSessionMachine, RequestQueue, RequestTable } from '../../machines/index.js';
import { fromPlain, toPlain } from '../../src/mutate/contextCodec.js';

/**
 * The step check modulo write-only context (src/mutate/steps.ts alikeModuloWriteOnly) and the read
 * detector under it (src/mutate/reads.ts), on a small hand-made machine driven by hand as a world would.
 */

interface Ctx {
  count: number;
  log: number;
  tag: string;
  hidden: number;
  copy: number;
  p: number;
}

/** `log` is written and never read; `count` is read by a guard; `tag` by nobody in the machine. */
const toy = setup({
  types: { context: {} as Ctx, events: {} as { type: 'TICK' } | { type: 'MARK' } | { type: 'COPY' } | { type: 'SEND' } },
  actions: {
    bump: assign({ count: ({ context }) => context.count + 1 }),
    stamp: assign({ log: ({ context }) => context.log + 10 }),
    tagIt: assign({ tag: 'marked' }),
    // Reads `hidden` inside an assign function (to write another field).
    copyHidden: assign(({ context }) => ({ copy: context.hidden + 1 })),
    send: (_: unknown, _params: { p: number }) => {},
  },
  guards: { tooMany: ({ context }) => context.count >= 2 },
}).createMachine({
  id: 'toy',
  context: { count: 0, log: 0, tag: '', hidden: 0, copy: 0, p: 0 },
  initial: 'idle',
  states: {
    idle: {
      on: {
        TICK: [{ guard: 'tooMany', target: 'done' }, { actions: ['bump', 'stamp'] }],
        MARK: { actions: ['tagIt', 'stamp'] },
        COPY: { actions: 'copyHidden' },
        // Reads `p` in a params function.
        SEND: { actions: { type: 'send', params: ({ context }) => ({ p: context.p }) } },
      },
    },
    done: { type: 'final' },
  },
});

/** The toy machine with one action of one transition dropped (what the drop-action operator builds). */
function dropping(event: string, action: string): AnyStateMachine {
  const config = structuredCloneConfig(toy.config as unknown as Record<string, unknown>);
  const on = ((config.states as Record<string, { on: Record<string, unknown> }>).idle!.on);
  const t = on[event];
  const drop = (x: { actions?: unknown }) => {
    if (Array.isArray(x.actions)) x.actions = x.actions.filter((a) => a !== action);
    else if (x.actions === action) delete x.actions;
  };
  if (Array.isArray(t)) t.forEach((b) => drop(b as { actions?: unknown }));
  else drop(t as { actions?: unknown });
  return createMachine(config as never, toy.implementations as never) as unknown as AnyStateMachine;
}

/** A copy of the config's objects and arrays (functions shared). */
function structuredCloneConfig<T>(x: T): T {
  if (Array.isArray(x)) return x.map(structuredCloneConfig) as T;
  if (typeof x === 'object' && x !== null && Object.getPrototypeOf(x) === Object.prototype) return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, structuredCloneConfig(v)])) as T;
  return x;
}

/** Record the original's calls as a world would make them: `events` in turn from the initial snapshot, `read` what the world looks at. */
function recorded(events: EventObject[], read: (s: AnyMachineSnapshot) => void = () => {}) {
  const rec = new StepRecorder();
  const m = rec.wrap(toy as unknown as AnyStateMachine);
  let [s] = pureInitialTransition(m, undefined);
  read(s);
  for (const e of events) {
    [s] = pureTransition(m, s, e);
    read(s);
  }
  return rec.record();
}

describe('equivalence modulo write-only context', () => {
  it('(a) a mutant that only stops writing a field nobody reads is alike modulo that field (and not alike exactly)', () => {
    const rec = recorded([{ type: 'TICK' }, { type: 'TICK' }, { type: 'TICK' }], (s) => void (s.value as unknown));
    const mutant = dropping('TICK', 'stamp');
    expect(firstDifference(mutant, rec)).toMatch(/on TICK/);
    expect(alikeModuloWriteOnly(mutant, rec)).toEqual({ alike: true, fields: ['toy.log'] });
  });

  it('(b) a mutant whose difference is a field a guard reads later (a counter) is not alike', () => {
    // One TICK: the guard reads count (0 in both, so the branch taken is the same), the answers differ only in count.
    const rec = recorded([{ type: 'TICK' }]);
    const mutant = dropping('TICK', 'bump');
    expect(alikeModuloWriteOnly(mutant, rec)).toEqual({ alike: false, why: "toy.count differs and the mutant's own steps read it" });
  });

  it('(c) a field read only by the world (not by the machine) is not write-only', () => {
    const mutant = dropping('MARK', 'tagIt');
    // Nobody reads tag: alike.
    expect(alikeModuloWriteOnly(mutant, recorded([{ type: 'MARK' }]))).toEqual({ alike: true, fields: ['toy.tag'] });
    // The world reads it (e.g. an invariant): not alike.
    const rec = recorded([{ type: 'MARK' }], (s) => void (s.context as Ctx).tag);
    expect(rec.outside?.toy).toEqual({ fields: ['tag'], all: false });
    expect(alikeModuloWriteOnly(mutant, rec)).toEqual({ alike: false, why: 'toy.tag differs and is read outside the machine' });
    // Enumerating the context (a spread) reads every field.
    const spread = recorded([{ type: 'MARK' }], (s) => void { ...(s.context as Ctx) });
    expect(spread.outside?.toy?.all).toBe(true);
    expect(alikeModuloWriteOnly(mutant, spread).alike).toBe(false);
  });

  it('(d) the detector sees reads inside assign functions and params functions, and not the fields they only write', () => {
    const reads = newReads();
    const t = trackedMachine(toy as unknown as AnyStateMachine, reads);
    let [s] = pureInitialTransition(t, undefined);
    [s] = pureTransition(t, s, { type: 'COPY' });
    expect((s.context as Ctx).copy).toBe(1);
    expect([...reads.fields].sort()).toEqual(['hidden']);
    const [, actions] = pureTransition(t, s, { type: 'SEND' });
    expect((actions as Array<{ params?: unknown }>).map((a) => a.params)).toEqual([{ p: 0 }]);
    expect([...reads.fields].sort()).toEqual(['hidden', 'p']);
    pureTransition(t, s, { type: 'TICK' });
    // The guard reads count; bump's assign for count reads count; stamp's reads log.
    expect([...reads.fields].sort()).toEqual(['count', 'hidden', 'log', 'p']);
    expect(reads.all).toBe(false);
  });

  it('(d) a mutant that differs in a field its own assign function reads is not alike', () => {
    // Original: COPY then COPY (copy = hidden + 1 both times). Mutant: hidden starts at 5 (its answers
    // differ in hidden only on the initial snapshot), and copyHidden reads it.
    const rec = recorded([{ type: 'COPY' }]);
    const config = structuredCloneConfig(toy.config as unknown as Record<string, unknown>);
    config.context = { count: 0, log: 0, tag: '', hidden: 5, copy: 0, p: 0 };
    const mutant = createMachine(config as never, toy.implementations as never) as unknown as AnyStateMachine;
    expect(alikeModuloWriteOnly(mutant, rec)).toEqual({ alike: false, why: "toy.hidden differs and the mutant's own steps read it" });
  });

  it('a machine with a built-in action the copy cannot watch (raise) counts every field as read', () => {
    const m = createMachine({ id: 'r', context: { a: 1 }, on: { GO: { actions: raise({ type: 'NEXT' }) } } }) as unknown as AnyStateMachine;
    const reads = newReads();
    trackedMachine(m, reads);
    expect(reads.all).toBe(true);
    const plain = newReads();
    trackedMachine(toy as unknown as AnyStateMachine, plain);
    expect(plain.all).toBe(false);
  });

  it('JSON serialisation counts as a copy only in the explorer’s keying functions', () => {
    const o = new OutsideReads();
    const ctx = o.view('m', { a: 1, b: 2 });
    function snapId(c: unknown) {
      return JSON.stringify(c);
    }
    expect(snapId(ctx)).toBe('{"a":1,"b":2}');
    expect(o.data().m).toEqual({ fields: [], all: false });
    function decide(c: unknown) {
      return JSON.stringify(c) === '{"a":1,"b":2}';
    }
    expect(decide(ctx)).toBe(true);
    expect(o.data().m).toEqual({ fields: [], all: true });
    // The machine's own work (inside) is not an outside read.
    const o2 = new OutsideReads();
    const c2 = o2.view('m', { a: 1 }) as { a: number };
    o2.inside(() => c2.a);
    expect(o2.data().m).toEqual({ fields: [], all: false });
    expect(c2.a).toBe(1);
    expect(o2.data().m).toEqual({ fields: ['a'], all: false });
  });
});

/** Differs in composed/handles only in the count of settled handles, which a guard of contextSend reads. */
const READ_MUTANT = 'contextSend: drop action countSettled in sender.sending TRANSFERS_SETTLED[1]';

describe('modulo write-only context in a shipped scenario (composed/handles)', { timeout: 600_000 }, () => {
  const scenario = 'composed/handles';
  const base: Baseline = computeBaseline(scenario);
  const footing = 'footing/1x1-shm';
  const sameFooting: ScenarioOutcome = { scenario: footing, kind: 'clean', same: true, truncated: false, states: 10, edges: 20, ms: 0 };
  const bases = [
    { scenario: footing, truncated: false, decides: true },
    { scenario, truncated: true, decides: false },
  ];

  it('the composed world reads what it is known to read (admission holders, stored early info), and no field of blockLease', () => {
    expect(base.steps.outside?.admission?.fields).toContain('holders');
    expect(base.steps.outside?.peerSession?.fields).toContain('early');
    expect(base.steps.outside?.blockLease).toEqual({ fields: [], all: false });
  });

  it('the record survives the trip to another thread: after a structured clone, the shipped machines (persistent tables in their contexts) answer every recorded call alike', () => {
    // Records are computed in one worker and checked in others (postMessage clones them, dropping prototypes).
    const carried = structuredClone(base.steps);
    for (const m of [admissionMachine, peerSessionMachine, blockLeaseMachine]) {
      expect(carried.machines[m.id]?.steps.length).toBeGreaterThan(0);
      expect(firstDifference(m, carried)).toBeNull();
    }
    expect(alikeModuloWriteOnly(admissionMachine, carried)).toEqual({ alike: true, fields: [] });
    expect(alikeModuloWriteOnly(peerSessionMachine, carried)).toEqual({ alike: true, fields: [] });
  });

  it('a lease that stops bumping its epoch is alike modulo blockLease.epoch, explored clean, and equivalent by this rule', () => {
    const m = mutantNamed('blockLease: drop action bumpEpoch in free ALLOCATE');
    expect(firstDifference(m.build(), base.steps)).not.toBeNull();
    const r = exploreMutant(m.build(), base, { maxMs: 600_000 });
    expect(r).toMatchObject({ kind: 'clean', same: false, writeOnly: ['blockLease.epoch'] });
    const v = classify(m, [sameFooting, r], bases, 0);
    expect(v).toMatchObject({ verdict: 'equivalent', writeOnly: ['blockLease.epoch'] });
    expect(v.why).toMatch(/alike modulo write-only context: blockLease\.epoch/);
  });

  it('a mutant whose difference a guard reads stays undecided, and says why', () => {
    const m = mutantNamed(READ_MUTANT);
    const r = exploreMutant(m.build(), base, { maxMs: 600_000 });
    expect(r).toMatchObject({ kind: 'clean', same: false, notWriteOnly: expect.stringMatching(/read/) });
    expect(r).not.toHaveProperty('writeOnly');
    expect(classify(m, [sameFooting, r], bases, 0)).toMatchObject({ verdict: 'survived', why: expect.stringMatching(/^undecided: .*differs only in composed\/handles/) });
  });
});

describe('context values a step record carries between threads', () => {
  it('a table, a queue or finished records come back the same kind with the same entries, nested anywhere; a value of another class is refused', () => {
    const ctx = { free: 3, holders: RequestTable.of([['r2', 1], ['r1', 2]] as const), queue: RequestQueue.of([{ request: 'r4', need: 2 }, { request: 'r3', need: 1 }]), finished: FinishedRecords.of([{ request: 'r7', quiesced: false, wrote: true }]), nested: [{ active: RequestTable.of([['r9', true]] as const) }], none: null };
    const back = fromPlain(structuredClone(toPlain(ctx))) as typeof ctx;
    expect(JSON.stringify(back)).toBe(JSON.stringify(ctx));
    expect(back.holders.get('r1')).toBe(2);
    expect(back.queue.head()).toEqual({ request: 'r4', need: 2 });
    expect(back.queue.has('r3')).toBe(true);
    expect(back.finished.any('r7', 0) && !back.finished.any('r7', 1)).toBe(true);
    expect(back.nested[0]!.active.has('r9')).toBe(true);
    expect(() => toPlain({ when: new Date(0) })).toThrow(/holds a Date instance/);
  });
});
