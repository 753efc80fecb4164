import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { ComposedConfig } from '../explore/composed.js';
import { pureInitialTransition, pureTransition, valueKey } from '../explore/world.js';

/**
 * Every machine step an exploration took, and a check that a mutant takes each of them the same way.
 *
 * The composed explorer reads a machine only through three calls: the initial snapshot for an input,
 * the transition of a snapshot on an event (next snapshot and emitted actions), and `snapshot.can(event)`
 * for the choices it offers. It is deterministic in what those calls return (worlds are keyed by the
 * snapshots' content). So if a mutant answers every call the original's exploration made with the same
 * content, the mutant's exploration makes the same calls in the same order and builds the same graph, by
 * induction over the search: identical, without exploring it. Any call answered differently means the
 * mutant must be explored (a difference may still be harmless).
 *
 * The record is plain data (it travels to worker threads): each distinct (state value, context, event)
 * that was stepped or asked `can`, each distinct input spawned, with the original's answer.
 */

export interface StepRecord {
  /** Per machine id. */
  machines: Record<string, MachineSteps>;
}

export interface MachineSteps {
  /** Steps: the snapshot (value, context), the event, the original's answer as text. */
  steps: Array<{ value: unknown; context: unknown; event: EventObject; answer: string }>;
  /** `can` queries: snapshot, event, the original's answer. */
  cans: Array<{ value: unknown; context: unknown; event: EventObject; answer: string }>;
  /** Initial snapshots: the input, the original's answer as text. */
  initials: Array<{ input: unknown; answer: string }>;
}

/** What the explorer can observe of a step's result: the snapshot's content and the actions it emitted. */
export function answerText(snap: AnyMachineSnapshot, actions: readonly unknown[]): string {
  const acts = actions.map((a) => {
    const x = a as { type: string; params?: unknown };
    return `${x.type}:${JSON.stringify(x.params ?? null)}`;
  });
  return `${snap.status}|${valueKey(snap)}|${JSON.stringify(snap.context)}|${JSON.stringify(snap.output ?? null)}|${acts.join(';')}`;
}

const snapKey = (s: AnyMachineSnapshot) => `${s.status}|${valueKey(s)}|${JSON.stringify(s.context)}`;

/** A step that emits more actions than this never ends (an eventless transition that keeps firing). */
export const MAX_ACTIONS_PER_STEP = 10_000;

type Scope = { actionExecutor: (a: unknown) => void };
/** The scope with its emitted actions also collected in `acts`; throws past MAX_ACTIONS_PER_STEP. */
function tap(scope: Scope, acts: unknown[]): Scope {
  return {
    ...scope,
    actionExecutor: (a: unknown) => {
      if (acts.push(a) > MAX_ACTIONS_PER_STEP) throw new Error(`a step of this machine never ends (more than ${MAX_ACTIONS_PER_STEP} actions: an eventless transition keeps firing)`);
      scope.actionExecutor(a);
    },
  };
}

/**
 * The machine, stopped with an exception where one of its steps would loop forever (a mutant whose
 * eventless transition lost its guard fills the heap otherwise); identical to it everywhere else.
 */
export function guarded(machine: AnyStateMachine): AnyStateMachine {
  const proto = machine as unknown as Record<string, (...a: unknown[]) => unknown>;
  const w = Object.create(machine) as Record<string, unknown>;
  w.transition = (snap: AnyMachineSnapshot, event: EventObject, scope: Scope) => proto.transition!.call(w, snap, event, tap(scope, []));
  w.getInitialSnapshot = (scope: Scope, input: unknown) => proto.getInitialSnapshot!.call(w, tap(scope, []), input);
  return w as unknown as AnyStateMachine;
}

/**
 * Machines that answer exactly as the originals and note each distinct call (a cache miss of the
 * explorer's own memo may repeat a call; the record keeps one of each). The wrapper's prototype is the
 * machine, so xstate's own code runs unchanged; snapshots it makes point at the wrapper, so their
 * `can` is noted too.
 */
export class StepRecorder {
  private readonly rec = new Map<string, { steps: Map<string, MachineSteps['steps'][number]>; cans: Map<string, MachineSteps['cans'][number]>; initials: Map<string, MachineSteps['initials'][number]>; seenSnaps: Set<string> }>();
  private readonly wrapped = new Map<AnyStateMachine, AnyStateMachine>();

  private of(id: string) {
    let r = this.rec.get(id);
    if (!r) this.rec.set(id, (r = { steps: new Map(), cans: new Map(), initials: new Map(), seenSnaps: new Set<string>() }));
    return r;
  }

  wrap(machine: AnyStateMachine): AnyStateMachine {
    const have = this.wrapped.get(machine);
    if (have) return have;
    const r = this.of(machine.id);
    const proto = machine as unknown as Record<string, (...a: unknown[]) => unknown>;
    const w = Object.create(machine) as Record<string, unknown>;
    // Calls xstate makes inside a step are part of that step, not queries of the explorer.
    let depth = 0;
    w.transition = (snap: AnyMachineSnapshot, event: EventObject, scope: Scope) => {
      const acts: unknown[] = [];
      depth++;
      let next: AnyMachineSnapshot;
      try {
        next = proto.transition!.call(w, snap, event, tap(scope, acts)) as AnyMachineSnapshot;
      } finally {
        depth--;
      }
      const k = `${snapKey(snap)}|${JSON.stringify(event)}`;
      if (!r.steps.has(k)) r.steps.set(k, { value: snap.value, context: snap.context, event, answer: answerText(next, acts) });
      this.seen(machine, r, snap);
      this.seen(machine, r, next);
      return next;
    };
    w.getInitialSnapshot = (scope: Scope, input: unknown) => {
      const acts: unknown[] = [];
      depth++;
      let snap: AnyMachineSnapshot;
      try {
        snap = proto.getInitialSnapshot!.call(w, tap(scope, acts), input) as AnyMachineSnapshot;
      } finally {
        depth--;
      }
      const k = JSON.stringify(input ?? null);
      if (!r.initials.has(k)) r.initials.set(k, { input, answer: answerText(snap, acts) });
      this.seen(machine, r, snap);
      return snap;
    };
    const wm = w as unknown as AnyStateMachine;
    this.wrapped.set(machine, wm);
    return wm;
  }

  /**
   * The explorer asks `snapshot.can(event)` of snapshots it holds, and xstate answers that through the
   * machine the snapshot's state nodes belong to, not through the wrapper: so every active snapshot the
   * exploration produced is noted with `can` of every event type the machine handles anywhere (more
   * queries than the explorer makes; a difference in one it never makes only costs an exploration).
   */
  private seen(machine: AnyStateMachine, r: ReturnType<StepRecorder['of']>, snap: AnyMachineSnapshot): void {
    if (snap.status !== 'active') return;
    const sk = snapKey(snap);
    if (r.seenSnaps.has(sk)) return;
    r.seenSnaps.add(sk);
    for (const type of eventTypes(machine)) r.cans.set(`${sk}|${type}`, { value: snap.value, context: snap.context, event: { type }, answer: canText(snap, { type }) });
  }

  configOf(cfg: ComposedConfig): ComposedConfig {
    const machines: ComposedConfig['machines'] = { context: {}, generation: {} };
    for (const side of ['context', 'generation'] as const) for (const [role, m] of Object.entries(cfg.machines[side])) machines[side][role] = m ? this.wrap(m) : m;
    return { ...cfg, machines };
  }

  record(): StepRecord {
    const machines: Record<string, MachineSteps> = {};
    for (const [id, r] of this.rec) machines[id] = { steps: [...r.steps.values()], cans: [...r.cans.values()], initials: [...r.initials.values()] };
    return { machines };
  }
}

/** The first call of `record` that `mutant` answers differently from the original, or null when it answers all alike. */
export function firstDifference(machine: AnyStateMachine, record: StepRecord): string | null {
  const r = record.machines[machine.id];
  if (!r) return null;
  const mutant = guarded(machine);
  for (const x of r.initials) {
    if (thrown(() => answerText(...pureInitialTransition(mutant, x.input))) !== x.answer) return `initial snapshot for ${JSON.stringify(x.input)}`;
  }
  for (const x of r.steps) {
    if (thrown(() => answerText(...pureTransition(mutant, resolved(mutant, x.value, x.context), x.event))) !== x.answer) return `${JSON.stringify(x.value)} on ${x.event.type}`;
  }
  for (const x of r.cans) {
    if (thrown(() => canText(resolved(mutant, x.value, x.context), x.event)) !== x.answer) return `can ${x.event.type} in ${JSON.stringify(x.value)}`;
  }
  return null;
}

/** A snapshot of `m` with this value and context (status active: only active actors are stepped or asked). */
function resolved(m: AnyStateMachine, value: unknown, context: unknown): AnyMachineSnapshot {
  return m.resolveState({ value: value as never, context: context as never }) as AnyMachineSnapshot;
}

/** An answer, or the exception it threw (the explorer would crash there: a difference like any other). */
function thrown(f: () => string): string {
  try {
    return f();
  } catch (err) {
    return `throws ${err instanceof Error ? err.message : String(err)}`;
  }
}

function canText(snap: AnyMachineSnapshot, event: EventObject): string {
  return thrown(() => String(snap.can(event)));
}

/** Every event type a transition of the machine names (xstate's `root.events`: own and descendants'). */
const typesCache = new WeakMap<AnyStateMachine, string[]>();
function eventTypes(m: AnyStateMachine): string[] {
  let t = typesCache.get(m);
  if (!t) typesCache.set(m, (t = [...new Set((m.root as unknown as { events: string[] }).events)].filter((e) => !e.startsWith('xstate.')).sort()));
  return t;
}
