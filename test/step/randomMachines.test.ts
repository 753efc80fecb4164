import { describe, expect, it } from 'vitest';
import { assign, cancel, raise, setup } from 'xstate';
import type { AnyStateMachine, EventObject } from 'xstate';
import { rng as prng } from '../../src/executor/harness.js';
import { UnsupportedMachineError } from '../../src/step/compile.js';
import { CompiledStepper } from '../../src/step/compiled.js';
import type { Snap, Step, Stepper } from '../../src/step/stepper.js';
import { xstateStepper } from '../../src/step/xstate.js';
import { diffSteps } from './lockstep.js';

/**
 * Generated code and interpreted plans against xstate on random machines. The oracle tests cover every
 * explored edge of the production machines; these machines reach shapes those do not — parallel regions
 * inside compound states, three regions, done events of nested parallels, reentry, eventless chains,
 * several transitions selected at once — so a generator bug is found before a machine change reaches it.
 * Each machine and its events come from a seed (reported on a mismatch); everything is deterministic.
 */

const EVENTS = ['A', 'B', 'C', 'D'] as const;
type Ctx = { n: number; a: number; log: number };

interface Shape {
  machine: AnyStateMachine;
  /** The machine has a parallel node somewhere. */
  parallel: boolean;
}

function randomMachine(seed: number): Shape {
  const r = prng(seed);
  const chance = (p: number) => r() < p;
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  let ids = 0;
  let timers = 0;
  let parallel = false;
  // Pass 1: the tree. Pass 2 (below) adds transitions that target any state by id.
  type N = { id: string; type: 'atomic' | 'compound' | 'parallel' | 'final'; kids: N[]; initial?: string; inParallelRegion: boolean };
  const all: N[] = [];
  const make = (depth: number, inParallelRegion: boolean, allowFinal: boolean): N => {
    const id = `s${ids++}`;
    let type: N['type'] = 'atomic';
    const roll = r();
    if (depth < 3 && roll < 0.3) type = 'compound';
    else if (depth < 3 && roll < 0.42) type = 'parallel';
    else if (allowFinal && roll > 0.85) type = 'final';
    const n: N = { id, type, kids: [], inParallelRegion };
    all.push(n);
    if (type === 'compound') {
      const count = 2 + int(2);
      for (let i = 0; i < count; i++) n.kids.push(make(depth + 1, inParallelRegion, i > 0));
      n.initial = n.kids[0]!.id;
    } else if (type === 'parallel') {
      parallel = true;
      const count = 2 + int(2);
      // Each region is compound, so it can complete (a final child) and raise a done event.
      for (let i = 0; i < count; i++) {
        const region: N = { id: `s${ids++}`, type: 'compound', kids: [], inParallelRegion: true };
        all.push(region);
        const kidsCount = 2 + int(2);
        for (let k = 0; k < kidsCount; k++) region.kids.push(make(depth + 2, true, k > 0));
        region.initial = region.kids[0]!.id;
        n.kids.push(region);
      }
    }
    return n;
  };
  const rootKids: N[] = [];
  const topCount = 2 + int(3);
  for (let i = 0; i < topCount; i++) rootKids.push(make(1, false, i > 0));
  const rootParallel = chance(0.25);
  if (rootParallel) parallel = true;

  const targets = all.filter((n) => n.type !== 'final' || chance(0.5)).map((n) => `#${n.id}`);
  const action = (): unknown => {
    switch (int(6)) {
      case 0:
        return assign({ n: ({ context, event }: { context: Ctx; event: EventObject & { x?: number } }) => (context.n + (event.x ?? 1)) % 11 });
      case 1:
        return assign(({ context }: { context: Ctx }) => ({ n: (context.n * 3 + 1) % 13, log: context.log + 1 }));
      case 2:
        return { type: 'note', params: { k: int(5) } };
      case 3:
        return { type: 'note', params: ({ context }: { context: Ctx }) => ({ k: context.n }) };
      case 4:
        return 'touch';
      default:
        return assign({ log: ({ context }: { context: Ctx }) => context.log + 2, n: 4 });
    }
  };
  const actions = () => Array.from({ length: int(3) }, action);
  const guard = (): unknown => {
    switch (int(4)) {
      case 0:
        return undefined;
      case 1:
        return { type: 'mod', params: { m: 2 + int(3), r: int(2) } };
      case 2:
        return ({ context }: { context: Ctx }) => context.n > 4;
      default:
        return ({ event }: { event: EventObject & { x?: number } }) => (event.x ?? 0) === 1;
    }
  };
  const transition = () => {
    const t: Record<string, unknown> = { actions: actions() };
    if (chance(0.8)) t.target = pick(targets);
    const g = guard();
    if (g !== undefined) t.guard = g;
    if (chance(0.2)) t.reenter = true;
    return t;
  };
  const config = (n: N): Record<string, unknown> => {
    const c: Record<string, unknown> = { id: n.id };
    if (n.type === 'final') return { ...c, type: 'final', entry: chance(0.3) ? ['touch'] : [] };
    if (n.type === 'parallel') c.type = 'parallel';
    if (n.kids.length > 0) c.states = Object.fromEntries(n.kids.map((k) => [k.id, config(k)]));
    if (n.initial) c.initial = n.initial;
    const on: Record<string, unknown> = {};
    for (const ev of EVENTS) if (chance(0.3)) on[ev] = chance(0.3) ? [transition(), transition()] : transition();
    c.on = on;
    const entry = actions();
    const exit = actions();
    if (chance(0.25)) {
      // A delayed raise armed on entry and cancelled on exit (a deadline the state owns).
      const id = `t${timers++}`;
      entry.push(raise({ type: pick(EVENTS) }, { delay: 5 + int(20), id }));
      exit.push(cancel(id));
    }
    if (chance(0.15)) c.after = { [10 + int(10)]: { target: pick(targets), actions: actions() } };
    c.entry = entry;
    c.exit = exit;
    // An eventless chain that always ends: its guard reads a counter only its own actions raise.
    if (n.type === 'atomic' && chance(0.2)) c.always = [{ guard: ({ context }: { context: Ctx }) => context.a < 3, target: pick(targets), actions: [assign({ a: ({ context }: { context: Ctx }) => context.a + 1 }), ...actions()] }];
    if ((n.type === 'compound' || n.type === 'parallel') && chance(0.4)) c.onDone = { target: pick(targets), actions: actions() };
    return c;
  };
  const machine = setup({
    types: { context: {} as Ctx, events: {} as { type: (typeof EVENTS)[number]; x?: number } },
    actions: { note: (_: unknown, _p: { k: number }) => {}, touch: () => {} },
    guards: { mod: ({ context }: { context: Ctx }, p: { m: number; r: number }) => context.n % p.m === p.r },
  }).createMachine({
    id: `random${seed}`,
    context: { n: 0, a: 0, log: 0 },
    ...(rootParallel ? { type: 'parallel' } : { initial: rootKids[0]!.id }),
    states: Object.fromEntries(rootKids.map((k) => [k.id, config(k)])),
    output: ({ context }: { context: Ctx }) => ({ n: context.n, log: context.log }),
  } as never) as unknown as AnyStateMachine;
  return { machine, parallel };
}

function randomEvents(seed: number): EventObject[] {
  const r = prng(seed ^ 0x5bd1e995);
  return Array.from({ length: 14 }, () => ({ type: EVENTS[Math.floor(r() * EVENTS.length)]!, x: Math.floor(r() * 3) }) as EventObject);
}

/** Steps one machine through the events with xstate and the stepper under test; mismatches as lines. */
function compare(shape: Shape, events: EventObject[], stepper: CompiledStepper): string[] {
  const m = shape.machine;
  let x: Step;
  try {
    x = xstateStepper.initial(m, undefined);
  } catch {
    return []; // a machine xstate itself cannot start is not a case
  }
  let s: Step = stepper.initial(m, undefined);
  const out = diffSteps(x, s, false, false).map((l) => `start: ${l}`);
  const cm = stepper.compile(m);
  for (const ev of events) {
    if (out.length > 0 || x.snap.status !== 'active') break;
    let nx: Step;
    try {
      nx = xstateStepper.step(m, x.snap, ev);
    } catch {
      break;
    }
    let ns: Step;
    try {
      ns = stepper.step(m, s.snap, ev);
    } catch (error) {
      out.push(`${JSON.stringify(x.snap.value)} --${ev.type}--> the stepper threw where xstate did not: ${String(error)}`);
      break;
    }
    for (const l of diffSteps(nx, ns, nx.snap === x.snap, ns.snap === s.snap)) out.push(`${JSON.stringify(x.snap.value)} --${ev.type}(x=${String((ev as { x?: number }).x)})--> ${l}`);
    // The executor's mode: the same step written into a snapshot of its own.
    const own = cm.own(s.snap as Snap);
    const ip = cm.stepInPlace(own, ev);
    for (const l of diffSteps(ns, { snap: own, effects: [...ip.effects], timers: [...ip.timers] }, ns.snap === s.snap, !ip.changed)) out.push(`in place, ${ev.type}: ${l}`);
    const takes = cm.takes(s.snap as Snap, ev);
    if (!takes && (nx.snap !== x.snap || nx.effects.length > 0 || nx.timers.length > 0)) out.push(`takes(${ev.type}) is false, but xstate changed or acted`);
    x = nx;
    s = ns;
  }
  return out;
}

const SEEDS = Array.from({ length: 400 }, (_, i) => i + 1);

describe('generated code and interpreted plans vs xstate on random machines', () => {
  for (const [name, make] of [
    // Plans beyond a few are built on first use: a random machine can have thousands the events never reach.
    ['generated code', () => new CompiledStepper({ maxEagerPlans: 50 })],
    ['interpreted plans', () => new CompiledStepper({ generate: false, maxEagerPlans: 50 })],
  ] as const) {
    it(`${name}: ${SEEDS.length} machines, 14 events each`, { timeout: 120_000 }, () => {
      const failures: string[] = [];
      let compared = 0;
      let withParallel = 0;
      let refused = 0;
      for (const seed of SEEDS) {
        const shape = randomMachine(seed);
        const stepper = make();
        try {
          stepper.compile(shape.machine);
        } catch (error) {
          if (error instanceof UnsupportedMachineError) {
            refused++;
            continue;
          }
          throw error;
        }
        const lines = compare(shape, randomEvents(seed), stepper);
        compared++;
        if (shape.parallel) withParallel++;
        if (lines.length > 0 && failures.length < 3) failures.push(`seed ${seed}:\n  ${lines.slice(0, 4).join('\n  ')}`);
      }
      expect(failures).toEqual([]);
      // The generator saw the shapes this test exists for.
      expect(compared).toBeGreaterThan(SEEDS.length * 0.9);
      expect(withParallel).toBeGreaterThan(SEEDS.length * 0.3);
      expect(refused).toBe(0);
    });
  }

  it('generated code that leaves one transition out of a parallel selection is caught (the check can fail)', { timeout: 120_000 }, () => {
    // The first transition of each configuration's first bitmask selection never sets its bit.
    const broken = new CompiledStepper({ maxEagerPlans: 50, rewriteGenerated: (src) => src.replace(/m \|= \d+;/, 'm |= 0;') });
    let caught = 0;
    for (const seed of SEEDS.slice(0, 120)) {
      const shape = randomMachine(seed);
      if (compare(shape, randomEvents(seed), broken).length > 0) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  });
});
