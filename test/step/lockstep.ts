import type { AnyStateMachine, EventObject } from 'xstate';
import type { Combination } from '../../src/explore/catalog.js';
import { scenarioFor } from '../../src/explore/catalog.js';
import { buildGraph } from '../../src/explore/explorer.js';
import { COMPOSED_SCENARIOS, composedConfig } from '../../src/explore/composedCatalog.js';
import { exploreComposed } from '../../src/explore/composedExplorer.js';
import { CompiledStepper } from '../../src/step/compiled.js';
import type { Snap, Step, Stepper } from '../../src/step/stepper.js';
import { initialWithActions, splitActions, transitionWithActions } from '../../src/step/xstate.js';

/**
 * Lockstep check of a stepper against xstate (tree_fuzz.zig style): the explorer builds a combination's
 * graph with xstate, and every machine step it takes on the way (every explored edge's transitions, and
 * every actor start) is replayed with the stepper under test and compared — value, context, status,
 * output, tags, effects in order, timer operations in order, and whether the snapshot changed.
 *
 * The world is stepped by the stepper under test (so it runs on the snapshots it produces, as in a host),
 * and xstate replays each step from its own snapshot of the same key. Steps are sampled once per unique
 * (machine, snapshot, event) key, so a step repeated on many edges is compared once. A wrong step is
 * reported at its first occurrence, before it can steer the exploration elsewhere.
 */
export interface LockstepResult {
  combination: string;
  states: number;
  edges: number;
  /** Machine steps (and actor starts) taken while exploring. */
  calls: number;
  /** Unique (machine, snapshot, event) keys compared. */
  compared: number;
  mismatches: string[];
}

const snapKey = (machine: string, s: Snap) => `${machine}\u0000${s.status}\u0000${JSON.stringify(s.value)}\u0000${JSON.stringify(s.context)}`;

/** Differences between two steps, as readable lines (empty when equal). */
export function diffSteps(a: Step, b: Step, aUnchanged: boolean, bUnchanged: boolean): string[] {
  const out: string[] = [];
  const cmp = (what: string, x: unknown, y: unknown) => {
    const sx = JSON.stringify(x);
    const sy = JSON.stringify(y);
    if (sx !== sy) out.push(`${what}: xstate ${sx} ≠ ${sy}`);
  };
  cmp('value', a.snap.value, b.snap.value);
  cmp('status', a.snap.status, b.snap.status);
  cmp('context', a.snap.context, b.snap.context);
  cmp('output', a.snap.output, b.snap.output);
  cmp('tags', [...a.snap.tags].sort(), [...b.snap.tags].sort());
  cmp('effects', a.effects, b.effects);
  cmp('timers', a.timers, b.timers);
  if (aUnchanged !== bUnchanged) out.push(`snapshot identity: xstate ${aUnchanged ? 'kept' : 'replaced'} it, the stepper ${bUnchanged ? 'kept' : 'replaced'} it`);
  return out;
}

/** Raw xstate-shaped actions for the explorer's world, from a step (timers first: routing never reads them). */
function asActions(step: Step): Array<{ type: string; params: unknown }> {
  const out: Array<{ type: string; params: unknown }> = [];
  for (const t of step.timers) out.push(t.op === 'arm' ? { type: 'xstate.raise', params: { event: t.event, id: t.id, delay: t.delay } } : { type: 'xstate.cancel', params: { sendId: t.id } });
  for (const e of step.effects) out.push(e);
  return out;
}

/** One constant list of a machine's event types (at most 31, what `acceptedOf` takes), for `acceptedOf`'s cache to be exercised. */
const eventLists = new WeakMap<AnyStateMachine, EventObject[]>();
function eventListOf(machine: AnyStateMachine): EventObject[] {
  let l = eventLists.get(machine);
  if (l === undefined) eventLists.set(machine, (l = (machine.events as string[]).slice(0, 31).map((type) => ({ type }))));
  return l;
}

/** Wrappers that run a machine on the stepper under test and check each unique step against xstate. */
function checker(label: string, stepper: Stepper, maxMismatches: number) {
  const seen = new Set<string>();
  /** xstate's own snapshot for each snapshot key the stepper under test produced. */
  const twin = new Map<string, Snap>();
  const keys = new WeakMap<object, string>();
  const keyOf = (machine: string, s: Snap) => {
    let k = keys.get(s);
    if (k === undefined) keys.set(s, (k = snapKey(machine, s)));
    return k;
  };
  const mismatches: string[] = [];
  let calls = 0;
  const report = (what: string, lines: string[]) => {
    if (lines.length > 0 && mismatches.length < maxMismatches) mismatches.push(`${label} ${what}\n    ${lines.join('\n    ')}`);
  };

  // The world runs on the stepper under test; xstate replays each unique step from its own snapshots.
  const wrap = (machine: AnyStateMachine): AnyStateMachine => {
    const wrapped = Object.create(machine) as AnyStateMachine & Record<string, unknown>;
    wrapped.transition = ((snap: Snap, event: EventObject, scope: { actionExecutor(a: unknown): void }) => {
      calls++;
      const b = stepper.step(machine, snap, event);
      for (const a of asActions(b)) scope.actionExecutor(a);
      const inKey = keyOf(machine.id, snap);
      const key = `${inKey}\u0000${JSON.stringify(event)}`;
      if (seen.has(key)) return b.snap;
      seen.add(key);
      const from = twin.get(inKey) ?? snap;
      const [next, actions] = transitionWithActions(machine, from, event);
      const lines = diffSteps({ snap: next, ...splitActions(actions) }, b, next === from, b.snap === snap);
      // The executor skips loop events that `accepts` rules out: that must never skip a step xstate takes.
      if (stepper instanceof CompiledStepper && next !== from && !stepper.compile(machine).accepts(snap, event.type)) lines.push(`accepts(${event.type}) is false, but xstate changed the snapshot`);
      // Its loop asks `acceptedOf` for a fixed list of events at once (cached per configuration and list): the
      // same answers as `accepts`, for every event type of the machine, in every configuration visited.
      if (stepper instanceof CompiledStepper) {
        const cm = stepper.compile(machine);
        const list = eventListOf(machine);
        const bits = cm.acceptedOf(snap, list);
        list.forEach((e, i) => {
          if (((bits >>> i) & 1) !== (cm.accepts(snap, e.type) ? 1 : 0)) lines.push(`acceptedOf bit ${i} (${e.type}) is ${(bits >>> i) & 1}, accepts says ${cm.accepts(snap, e.type)}`);
        });
      }
      // It also skips a step whose guards `takes` found closed: xstate must then change nothing and do nothing.
      if (stepper instanceof CompiledStepper && !stepper.compile(machine).takes(snap, event)) {
        const xs = splitActions(actions);
        if (next !== from || xs.effects.length > 0 || xs.timers.length > 0) lines.push(`takes(${event.type}) is false, but xstate ${next !== from ? 'changed the snapshot' : 'emitted actions'}`);
      }
      // The executor steps in place (stepInPlace on a snapshot of its own): the same step, written into the snapshot.
      if (stepper instanceof CompiledStepper) {
        const cm = stepper.compile(machine);
        const own = cm.own(snap);
        const ip = cm.stepInPlace(own, event);
        for (const l of diffSteps(b, { snap: own, effects: [...ip.effects], timers: [...ip.timers] }, b.snap === snap, !ip.changed)) lines.push(`in place: ${l.replace('xstate', 'step')}`);
      }
      report(`${machine.id} ${JSON.stringify(snap.value)} --${JSON.stringify(event)}-->`, lines);
      twin.set(keyOf(machine.id, b.snap), next);
      return b.snap;
    }) as never;
    wrapped.getInitialSnapshot = ((scope: { actionExecutor(a: unknown): void }, input: unknown) => {
      calls++;
      const b = stepper.initial(machine, input);
      for (const a of asActions(b)) scope.actionExecutor(a);
      const key = `${machine.id}\u0000init\u0000${JSON.stringify(input)}`;
      if (seen.has(key)) return b.snap;
      seen.add(key);
      const [snap, actions] = initialWithActions(machine, input);
      const lines = diffSteps({ snap, ...splitActions(actions) }, b, false, false);
      // The executor starts its actors with initialOwned: the same start, with a context of the snapshot's own.
      if (stepper instanceof CompiledStepper) {
        const o = stepper.compile(machine).initialOwned(input);
        for (const l of diffSteps(b, o, false, false)) lines.push(`owned: ${l.replace('xstate', 'initial')}`);
        if (o.snap.context === (machine.config.context as unknown)) lines.push('owned: the snapshot shares the machine\'s static context object');
      }
      report(`${machine.id} start ${JSON.stringify(input)}`, lines);
      twin.set(keyOf(machine.id, b.snap), snap);
      return b.snap;
    }) as never;
    return wrapped;
  };
  return { wrap, mismatches, compared: () => seen.size, calls: () => calls };
}

export function lockstep(c: Combination, stepper: Stepper, maxMismatches = 5): LockstepResult {
  const sc = scenarioFor(c);
  const k = checker(`${c.scenario}/${c.variant}`, stepper, maxMismatches);
  const machines = Object.fromEntries(Object.entries(sc.machines).map(([role, m]) => [role, k.wrap(m)]));
  const g = buildGraph({ ...sc, machines });
  const edges = g.out.reduce((n, e) => n + e.length, 0);
  return { combination: `${c.scenario}/${c.variant}`, states: g.keys.length, edges, calls: k.calls(), compared: k.compared(), mismatches: k.mismatches };
}

/** The same check over a composed combination (both servers' machines through the production wiring). */
export function lockstepComposed(c: { scenario: string; variant: string }, stepper: Stepper, maxMismatches = 5): LockstepResult {
  const cfg = composedConfig(c.scenario, c.variant);
  const k = checker(`composed ${c.scenario}/${c.variant}`, stepper, maxMismatches);
  const machines = Object.fromEntries(
    Object.entries(cfg.machines).map(([side, roles]) => [side, Object.fromEntries(Object.entries(roles).map(([role, m]) => [role, m ? k.wrap(m) : m]))]),
  ) as typeof cfg.machines;
  const r = exploreComposed({ ...cfg, machines }, c, { maxStates: COMPOSED_SCENARIOS[c.scenario]!.maxStates });
  return { combination: `composed ${c.scenario}/${c.variant}`, states: r.states, edges: r.edges, calls: k.calls(), compared: k.compared(), mismatches: k.mismatches };
}
