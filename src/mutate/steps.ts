import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { ComposedConfig } from '../explore/composed.js';
import { pureInitialTransition, pureTransition, valueKey } from '../explore/world.js';
import { fromPlain, toPlain } from './contextCodec.js';
import type { FieldReadsData } from './reads.js';
import { OutsideReads, isRead, newReads, rawContext, trackedMachine } from './reads.js';

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
  /**
   * Context fields of each machine (by id) that something outside the machine read during the
   * exploration: the world, its wiring, the invariants (src/mutate/reads.ts). Absent in older records.
   */
  outside?: Record<string, FieldReadsData>;
}

/** An answer split for the comparison modulo context fields: the context apart, the rest as text. */
export interface AnswerParts {
  rest: string;
  context: unknown;
}

export interface MachineSteps {
  /** Steps: the snapshot (value, context as plain data: contextCodec.ts), the event, the original's answer as text. */
  steps: Array<{ value: unknown; context: unknown; event: EventObject; answer: string; next: AnswerParts }>;
  /** `can` queries: snapshot, event, the original's answer. */
  cans: Array<{ value: unknown; context: unknown; event: EventObject; answer: string }>;
  /** Initial snapshots: the input, the original's answer as text. */
  initials: Array<{ input: unknown; answer: string; next: AnswerParts }>;
}

/** What the explorer can observe of a step's result: the snapshot's content and the actions it emitted. */
export function answerText(snap: AnyMachineSnapshot, actions: readonly unknown[]): string {
  return partsText(answerParts(snap, actions));
}

/** The same answer with the context apart (answerText is `partsText` of it). */
export function answerParts(snap: AnyMachineSnapshot, actions: readonly unknown[]): AnswerParts {
  const acts = actions.map((a) => {
    const x = a as { type: string; params?: unknown };
    return `${x.type}:${JSON.stringify(x.params ?? null)}`;
  });
  return { rest: `${snap.status}|${valueKey(snap)}|\u0000|${JSON.stringify(snap.output ?? null)}|${acts.join(';')}`, context: JSON.parse(JSON.stringify(snap.context ?? null)) as unknown };
}

const partsText = (p: AnswerParts): string => p.rest.replace('\u0000', () => JSON.stringify(p.context));

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
  /** Reads of the machines' contexts by everything else (src/mutate/reads.ts). */
  private readonly outside = new OutsideReads();
  private readonly handedOut = new WeakSet<AnyMachineSnapshot>();

  private of(id: string) {
    let r = this.rec.get(id);
    if (!r) this.rec.set(id, (r = { steps: new Map(), cans: new Map(), initials: new Map(), seenSnaps: new Set<string>() }));
    return r;
  }

  /**
   * The snapshot as the world receives it: its context a view that notes outside reads, and its `can`
   * counted as the machine's own work (a guard's reads are the machine's; the mutant's are watched on
   * its own copy, on every `can` this record keeps). Every snapshot the world holds comes through here:
   * it makes none itself (only transition and getInitialSnapshot, both wrapped).
   */
  private handOut(id: string, snap: AnyMachineSnapshot): AnyMachineSnapshot {
    if (this.handedOut.has(snap)) return snap;
    this.handedOut.add(snap);
    const s = snap as unknown as { context: unknown; can: (e: EventObject) => boolean };
    s.context = this.outside.view(id, s.context);
    const can = s.can;
    const outside = this.outside;
    s.can = function (this: unknown, e: EventObject) {
      return outside.inside(() => can.call(this, e));
    };
    return snap;
  }

  wrap(machine: AnyStateMachine): AnyStateMachine {
    const have = this.wrapped.get(machine);
    if (have) return have;
    const r = this.of(machine.id);
    const proto = machine as unknown as Record<string, (...a: unknown[]) => unknown>;
    const w = Object.create(machine) as Record<string, unknown>;
    // The step, and this record's own bookkeeping, are the machine's work: not outside reads.
    w.transition = (snap: AnyMachineSnapshot, event: EventObject, scope: Scope) =>
      this.handOut(
        machine.id,
        this.outside.inside(() => {
          const acts: unknown[] = [];
          const next = proto.transition!.call(w, snap, event, tap(scope, acts)) as AnyMachineSnapshot;
          const k = `${snapKey(snap)}|${JSON.stringify(event)}`;
          if (!r.steps.has(k)) {
            const parts = answerParts(next, acts);
            r.steps.set(k, { value: snap.value, context: toPlain(rawContext(snap.context)), event, answer: partsText(parts), next: parts });
          }
          this.seen(machine, r, snap);
          this.seen(machine, r, next);
          return next;
        }),
      );
    w.getInitialSnapshot = (scope: Scope, input: unknown) =>
      this.handOut(
        machine.id,
        this.outside.inside(() => {
          const acts: unknown[] = [];
          const snap = proto.getInitialSnapshot!.call(w, tap(scope, acts), input) as AnyMachineSnapshot;
          const k = JSON.stringify(input ?? null);
          if (!r.initials.has(k)) {
            const parts = answerParts(snap, acts);
            r.initials.set(k, { input, answer: partsText(parts), next: parts });
          }
          this.seen(machine, r, snap);
          return snap;
        }),
      );
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
    const context = toPlain(rawContext(snap.context));
    for (const type of eventTypes(machine)) r.cans.set(`${sk}|${type}`, { value: snap.value, context, event: { type }, answer: canText(snap, { type }) });
  }

  configOf(cfg: ComposedConfig): ComposedConfig {
    const machines: ComposedConfig['machines'] = { context: {}, generation: {} };
    for (const side of ['context', 'generation'] as const) for (const [role, m] of Object.entries(cfg.machines[side])) machines[side][role] = m ? this.wrap(m) : m;
    return { ...cfg, machines };
  }

  record(): StepRecord {
    const machines: Record<string, MachineSteps> = {};
    for (const [id, r] of this.rec) machines[id] = { steps: [...r.steps.values()], cans: [...r.cans.values()], initials: [...r.initials.values()] };
    return { machines, outside: this.outside.data() };
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

/** The step check modulo write-only context: alike, and in which fields (machine.field) the answers differed; or why not. */
export type ModuloVerdict = { alike: true; fields: string[] } | { alike: false; why: string };

/**
 * Whether `machine` answers every call of `record` as the original did except in context fields that
 * nothing reads: the mutant's own code on every recorded call (guards, actions, assign and params
 * functions, delays, output: src/mutate/reads.ts trackedMachine), nor anything outside the machine in
 * the original's exploration (record.outside). Everything else of each answer — status, value, output,
 * emitted actions and their params, every other field, and every `can` — must be equal.
 *
 * Why that is enough (by induction over the search, on the part of the place the original explored):
 * call two worlds *alike* when they differ only in those fields W of this machine's actors. Let w be a
 * world of the original's search and w' an alike world of the mutant's. (1) The world code that offers
 * choices, applies them, routes emitted actions and checks invariants is deterministic and, on w, read
 * no field of W (record.outside): on w' it takes the same path and reads the same values, so it offers
 * the same choices and makes the same machine calls with the same events. (2) A call of the mutant on
 * w' differs from its call on w only in the values of W in its input; its code read none of them on w
 * (trackedMachine), and xstate's own copy of the context moves each field to itself, so it takes the
 * same path and answers the same except in W. (3) On w the mutant answers as the original modulo W
 * (the comparison below). So each step from w' leads to a world alike to the original's step from w,
 * with the same labels and the same invariant verdicts: the relation "alike" is a bisimulation between
 * the original's explored part and the mutant's system, and no check that reads only what they read
 * can tell the two apart there. Dedup, partial-order reduction and the cut at a state budget read the
 * whole context (it is in a world's key), so the mutant's own search may merge worlds the original's
 * kept apart and cut elsewhere: the claim is about the original's explored part, step by step, not that
 * the mutant's search builds the same graph (src/mutate/explore.ts explores the mutant there anyway).
 */
export function alikeModuloWriteOnly(machine: AnyStateMachine, record: StepRecord): ModuloVerdict {
  const r = record.machines[machine.id];
  if (!r) return { alike: true, fields: [] };
  const outside = record.outside?.[machine.id];
  if (!record.outside) return { alike: false, why: 'the record has no outside reads' };
  const reads = newReads();
  const mutant = guarded(trackedMachine(machine, reads));
  const differing = new Set<string>();
  const compare = (got: AnswerParts | string, want: AnswerParts, where: () => string): string | null => {
    if (typeof got === 'string') return `${where()}: ${got}`;
    if (got.rest !== want.rest) return `${where()}: differs beyond its context`;
    const fields = differingFields(got.context, want.context);
    if (fields === null) return `${where()}: context differs as a whole`;
    for (const f of fields) differing.add(f);
    return null;
  };
  for (const x of r.initials) {
    const why = compare(attempt(() => answerParts(...pureInitialTransition(mutant, x.input))), x.next, () => `initial snapshot for ${JSON.stringify(x.input)}`);
    if (why) return { alike: false, why };
  }
  for (const x of r.steps) {
    const why = compare(attempt(() => answerParts(...pureTransition(mutant, resolved(mutant, x.value, x.context), x.event))), x.next, () => `${JSON.stringify(x.value)} on ${x.event.type}`);
    if (why) return { alike: false, why };
  }
  for (const x of r.cans) {
    if (thrown(() => canText(resolved(mutant, x.value, x.context), x.event)) !== x.answer) return { alike: false, why: `can ${x.event.type} in ${JSON.stringify(x.value)}` };
  }
  for (const f of [...differing].sort()) {
    if (isRead(reads, f)) return { alike: false, why: `${machine.id}.${f} differs and the mutant's own steps read it` };
    if (isRead(outside, f)) return { alike: false, why: `${machine.id}.${f} differs and is read outside the machine` };
  }
  return { alike: true, fields: [...differing].sort().map((f) => `${machine.id}.${f}`) };
}

/** Top-level fields whose values differ, or null when either context is not a record. */
function differingFields(a: unknown, b: unknown): string[] | null {
  const rec = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!rec(a) || !rec(b)) return JSON.stringify(a) === JSON.stringify(b) ? [] : null;
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

/** A result, or the exception it threw as text. */
function attempt<T>(f: () => T): T | string {
  try {
    return f();
  } catch (err) {
    return `throws ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** A snapshot of `m` with this value and recorded context (status active: only active actors are stepped or asked). */
function resolved(m: AnyStateMachine, value: unknown, context: unknown): AnyMachineSnapshot {
  return m.resolveState({ value: value as never, context: fromPlain(context) as never }) as AnyMachineSnapshot;
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
