import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { Clock } from '../core/clock.js';
import { realClock } from '../core/clock.js';
import { appended } from '../core/lists.js';
import type { EmittedAction, Env, MachineEvent, WorldState } from '../explore/world.js';
import { isFinished, roleOf } from '../explore/world.js';
import type { CompiledMachine } from '../step/compile.js';
import { CompiledStepper } from '../step/compiled.js';
import type { Snap, Stepper, TimerOp } from '../step/stepper.js';
import { xstateStepper } from '../step/xstate.js';
import type { Deadline } from './deadlines.js';
import { Deadlines } from './deadlines.js';
import type { HostOptions, LifecycleHost, TransitionRecord } from './host.js';

/**
 * The machines in "reducer mode": one snapshot per actor, stepped by a Stepper — by default plans
 * compiled from the machine definitions (step/compiled.ts, checked against xstate on every explored
 * edge) — with the routing discipline of ActorHost (effects routed after the step that made them, events
 * sent meanwhile queued and run to completion in order). Deadlines are armed on one clock timer per host
 * over an injected Clock (the simulator passes virtual time). No inspection stream: an executor that is
 * inspected uses ActorHost.
 */
export interface PureHostOptions extends Omit<HostOptions, 'route' | 'onDone' | 'inspect'> {
  /**
   * `owner` is what `ownerOf` returned for the actor at spawn (undefined without it). `actor` is its name,
   * or '' for an actor spawned by `spawnAt` whose name was not needed yet (its owner tells it apart).
   */
  route?(host: PureHost, actor: string, action: EmittedAction, owner?: unknown): void;
  /** `actor`, `owner`: as with `route`. */
  onDone?(host: PureHost, actor: string, output: unknown, owner?: unknown): void;
  /**
   * Called once per spawned actor: what the owner keeps about it (the executor's per-actor record). It
   * comes back with each of the actor's routed actions and transition records, with no lookup by name.
   * `name` is null for an actor spawned by `spawnAt` (the owner knows what it spawned).
   */
  ownerOf?(name: string | null): unknown;
  /**
   * The name of an actor spawned by `spawnAt`, from the key it was spawned with: built the first time
   * something needs it (a lookup by name, a reference used after the actor was removed), not at the spawn.
   */
  nameOf?(key: unknown): string;
  /** How machines are stepped; default: compiled plans. */
  stepper?: Stepper;
  /** Time for deadlines; default: the process's real clock. */
  clock?: Clock;
  /**
   * Step compiled machines in place (CompiledMachine.stepInPlace): an actor's snapshot object and its
   * context are updated, not replaced. For an owner that reads snapshots and keeps none (the executor);
   * `actor()` then returns a live object. Ignored with the xstate stepper.
   */
  inPlace?: boolean;
  /**
   * A leaner observer than onTransition, for an owner that keeps its own per-actor record: called with the
   * actor's reference (its `owner`, `snap`, `compiled`), the event and the value it left, and no record
   * built or filled. `byTimer`: the event is one of the actor's deadlines firing (its own timer, or `fire`),
   * told without the observer reading the event's type. Given, it replaces onTransition.
   */
  onChange?(ref: ActorRef, event: EventObject, from: Snap['value'] | null, byTimer: boolean): void;
  /**
   * `route`, `onDone`, `ownerOf` and `onChange` as the methods of one object, for an owner that keeps
   * them in a class of its own (the executor): the host then calls them as methods of an object whose
   * class V8 knows, and can inline them. The function options are bound methods or closures, values V8
   * cannot see through: each call went through the generic call builtins (a bound function through
   * three of them), some 70 calls per request in the burst bench. Given, it replaces those four options.
   */
  calls?: PureHostCalls;
}

/** What a host calls on its owner (PureHostOptions.calls): the four options of the same names, all required. */
export interface PureHostCalls {
  route(host: PureHost, actor: string, action: EmittedAction, owner: unknown): void;
  onDone(host: PureHost, actor: string, output: unknown, owner: unknown): void;
  ownerOf(name: string | null): unknown;
  onChange(ref: ActorRef, event: EventObject, from: Snap['value'] | null, byTimer: boolean): void;
}

/** The function options as a PureHostCalls (a host given functions, not `calls`: tests, tools). */
class OptionCalls implements PureHostCalls {
  private readonly routeFn: NonNullable<PureHostOptions['route']>;
  private readonly onDoneFn: NonNullable<PureHostOptions['onDone']> | null;
  private readonly ownerOfFn: NonNullable<PureHostOptions['ownerOf']> | null;
  private readonly onChangeFn: NonNullable<PureHostOptions['onChange']> | null;
  constructor(opts: PureHostOptions) {
    if (opts.route === undefined) throw new Error('PureHost needs the route option or calls');
    this.routeFn = opts.route;
    this.onDoneFn = opts.onDone ?? null;
    this.ownerOfFn = opts.ownerOf ?? null;
    this.onChangeFn = opts.onChange ?? null;
  }
  route(host: PureHost, actor: string, action: EmittedAction, owner: unknown): void {
    this.routeFn(host, actor, action, owner);
  }
  onDone(host: PureHost, actor: string, output: unknown, owner: unknown): void {
    if (this.onDoneFn !== null) this.onDoneFn(host, actor, output, owner);
  }
  ownerOf(name: string | null): unknown {
    return this.ownerOfFn !== null ? this.ownerOfFn(name) : undefined;
  }
  onChange(ref: ActorRef, event: EventObject, from: Snap['value'] | null, byTimer: boolean): void {
    if (this.onChangeFn !== null) this.onChangeFn(ref, event, from, byTimer);
  }
}

/**
 * One of an actor's machine timers, by timer id: the heap's entry and the actor's record of it in one
 * object, kept for the actor's life and armed again each time the machine arms that id (no object per arm).
 */
interface ActorTimer extends Deadline {
  readonly id: string;
  readonly rec: ActorRecord;
  event: EventObject;
}

function timerOf(timers: ActorTimer[], id: string): ActorTimer | undefined {
  for (let i = 0; i < timers.length; i++) if (timers[i]!.id === id) return timers[i];
  return undefined;
}

interface ActorRecord {
  /** Null until first needed for an actor spawned by `spawnAt` (PureHost.nameOf builds it from `nameKey`). */
  name: string | null;
  /** What `spawnAt` was given to name the actor by (kept past its removal: a reference used then resolves by name). */
  readonly nameKey: unknown;
  readonly machine: AnyStateMachine;
  /** Set when the stepper is compiled: O(1) state predicates per configuration. */
  readonly compiled: CompiledMachine | null;
  snap: Snap;
  /** Its timers by id, armed or not (a machine has one to three timer ids: a list, not a map). */
  timers: ActorTimer[] | null;
  /** Bumped whenever the snapshot changes (in place or replaced). */
  version: number;
  /** The owner's record of this actor (PureHostOptions.ownerOf). */
  owner: unknown;
  /** False once removed: a reference kept past the actor's life then resolves by name again (sendRef). */
  alive: boolean;
  /** The event of a deadline of this actor that fired and was not stepped yet (onChange's `byTimer`). */
  fired: EventObject | null;
  /** Its place in the host's list of actors not yet in the table by name (-1: in the table; see PureHost.index). */
  slot: number;
}

/** What a removed actor's record holds instead of its last snapshot (see `release`). */
const RELEASED: Snap = { status: 'stopped', value: null, context: null, output: undefined, error: undefined } as unknown as Snap;

/**
 * Let go of what a removed actor's record points to. An owner may keep the record (a reference past the
 * actor's life resolves by name), and a record that lived long enough sits in V8's old generation, where
 * every young object it points to is kept alive by each scavenge until a full collection: its snapshot,
 * context and owner's record were copied, promoted, and grew the old space by kilobytes per request.
 */
function release(r: ActorRecord): void {
  r.snap = RELEASED;
  r.owner = undefined;
  r.fired = null;
}

/**
 * What `spawnRef` hands back: the host's own record of the actor, for an owner that addresses it by
 * reference (`sendRef`, `tryStepRef`) instead of by name, with no lookup in the table of live actors.
 */
export type ActorRef = ActorRecord;

/**
 * The shared default stepper (its compiled machines are cached per machine object): plans run as
 * generated code. For A/B measurements and bisecting, `XFERSTATE_STEPPER=plans` interprets the same
 * plans instead, and `XFERSTATE_STEPPER=xstate` steps with xstate itself.
 */
function stepperFromEnv(): Stepper {
  switch (process.env.XFERSTATE_STEPPER) {
    case 'xstate':
      return xstateStepper;
    case 'plans':
      return new CompiledStepper({ generate: false });
    default:
      return new CompiledStepper();
  }
}
const defaultStepper: Stepper = stepperFromEnv();

/**
 * One machine object per (machine, delays) in the process: hosts built with the same delays share it,
 * and with it its compiled plans (the compiler caches per machine object). Without this every server a
 * process starts (a test, a bench, an embedder with several) compiled and warmed its plans again.
 */
const provided = new WeakMap<AnyStateMachine, Map<string, AnyStateMachine>>();
function withDelays(base: AnyStateMachine, delays: Record<string, number>): AnyStateMachine {
  let byDelays = provided.get(base);
  if (!byDelays) provided.set(base, (byDelays = new Map()));
  const key = JSON.stringify(Object.entries(delays).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  let m = byDelays.get(key);
  if (!m) byDelays.set(key, (m = base.provide({ delays } as never) as AnyStateMachine));
  return m;
}

/**
 * Drains that queued an event between two renewals of a host's queue array (a power of two; see
 * PureHost.queue).
 */
const DRAINS_PER_RENEWAL = 256;

/**
 * An empty array whose elements kind is objects. An empty literal's is small integers, and the first
 * push of an object changed it: loads of the array then met two maps, and that push site called the
 * generic push builtin in every host.
 */
function objectList<T>(): T[] {
  const l = [null as unknown as T];
  l.length = 0;
  return l;
}

/** A host's queue array (see PureHost.queue). */
function newQueue(): (ActorRecord | string | EventObject | undefined)[] {
  return objectList();
}
const INIT_EVENT: EventObject = { type: 'xstate.init' };

/** What onTransition gets for a step an onChange observer saw (for an owner that wants a full record only at times). */
export function transitionRecord(ref: ActorRef, event: EventObject, from: Snap['value'] | null, actor: string): TransitionRecord {
  const snap = ref.snap;
  return { actor, machine: ref.machine.id, event, from, to: snap.value, status: snap.status, toKey: ref.compiled ? ref.compiled.configOf(snap).valueKey : undefined, owner: ref.owner };
}

export class PureHost implements LifecycleHost {
  /**
   * Live actors by name, filled lazily: an actor spawned by reference (spawnRef) waits in `unindexed`
   * until something asks for an actor by name. The executor addresses its actors only by reference, so
   * it pays no hashing of a new name string and no table insert, delete and rehash per actor.
   */
  private readonly actors = new Map<string, ActorRecord>();
  private readonly unindexed: ActorRecord[] = objectList();
  /** The machine of each role, made at construction (a scan comparing interned role names: a handful of roles, no hashing per spawn). */
  private readonly machines: { role: string; machine: AnyStateMachine; compiled: CompiledMachine | null }[] = [];
  /**
   * The events sent during a drain, in order, in slots [head, tail): pairs of (the actor's record where
   * the sender had it, or its name to look up when the event comes up; the event). The array is kept
   * from one drain to the next (its slots cleared at the end of each), and replaced by a new one every
   * DRAINS_PER_RENEWAL drains that queued: an array kept for good is promoted to V8's old generation,
   * and each young record or event stored into it then took the slow write barrier. (A new array per
   * drain that queued cost an allocation and its growth by push each time: some 1.8 KB per request.)
   */
  private queue = newQueue();
  private head = 0;
  private tail = 0;
  private queuedDrains = 0;
  private draining = false;
  /** The clock's time, read at the first deadline armed in the present run to completion (-1: not read yet). */
  private drainNow = -1;
  private readonly deadlines: Deadlines;
  readonly stepper: Stepper;
  readonly clock: Clock;
  readonly env: Env;
  // The options the hot paths read, copied into fields of this class: the options object's shape varies
  // with its caller (which optional members it has, spread order; a spread site that has seen several
  // shapes makes a new hidden class per object), and code optimized for one shape was thrown away (a
  // deopt, then a recompile of the inlined loop) each time a host with another was made.
  private readonly inPlace: boolean;
  private readonly calls: PureHostCalls;
  /** Whether `calls.onChange` observes steps (given `calls`, or the onChange option); else onTransition, if given, does. */
  private readonly changeObserved: boolean;
  private readonly onTransition: PureHostOptions['onTransition'] | null;
  private readonly nameFor: PureHostOptions['nameOf'] | null;

  constructor(opts: PureHostOptions) {
    this.inPlace = opts.inPlace === true;
    this.calls = opts.calls ?? new OptionCalls(opts);
    this.changeObserved = opts.calls !== undefined || opts.onChange !== undefined;
    this.onTransition = opts.onTransition ?? null;
    this.nameFor = opts.nameOf ?? null;
    this.env = { ...(opts.initialEnv ?? {}) };
    this.stepper = opts.stepper ?? defaultStepper;
    this.clock = opts.clock ?? realClock;
    this.deadlines = new Deadlines(this.clock);
    // Compile every role now: a machine the compiler cannot run is refused at construction, not mid-request.
    for (const role of Object.keys(opts.machines)) this.addRole(role, opts);
  }

  get state(): WorldState {
    this.index();
    const actors: Record<string, AnyMachineSnapshot> = {};
    for (const [n, r] of this.actors) actors[n] = r.snap;
    return { actors, timers: {}, env: this.env, last: null };
  }

  names(): string[] {
    this.index();
    return [...this.actors.keys()];
  }

  has(name: string): boolean {
    return this.rec(name) !== undefined;
  }

  actor(name: string): AnyMachineSnapshot | undefined {
    return this.rec(name)?.snap;
  }

  /**
   * The record of an actor, with the last one looked up kept: the executor asks about one actor
   * several times in a row (its snapshot, whether it accepts an event, its version, then the send).
   */
  private rec(name: string): ActorRecord | undefined {
    if (name === this.lastName) return this.lastRec;
    let r = this.actors.get(name);
    if (r === undefined && this.unindexed.length !== 0) {
      this.index();
      r = this.actors.get(name);
    }
    if (r !== undefined) {
      this.lastName = name;
      this.lastRec = r;
    }
    return r;
  }
  private lastName = '';
  private lastRec: ActorRecord | undefined = undefined;

  /** Put the actors spawned by reference since the last call into the table by name. */
  private index(): void {
    const list = this.unindexed;
    for (let i = 0; i < list.length; i++) {
      const r = list[i]!;
      const name = this.nameOf(r);
      // spawnRef leaves this check to the first lookup by name (its caller keeps names unique: the executor checks at its spawn).
      if (this.actors.has(name)) throw new Error(`actor ${name} already exists`);
      this.actors.set(name, r);
      r.slot = -1;
    }
    list.length = 0;
  }

  /**
   * Whether the actor exists and is in the given state (xstate `matches`; `'worker.receiving'` is the same
   * query as `{ worker: 'receiving' }`). With compiled machines the answer is computed once per state
   * configuration and query, then looked up.
   */
  in(name: string, v: string | Record<string, unknown>): boolean {
    const r = this.rec(name);
    if (!r) return false;
    return r.compiled ? r.compiled.matches(r.snap, v) : r.snap.matches(v as never);
  }

  /** A number that changes whenever the actor's snapshot changes (-1: no such actor). */
  version(name: string): number {
    return this.rec(name)?.version ?? -1;
  }

  accepts(name: string, eventType: string): boolean {
    const r = this.rec(name);
    if (!r) return false;
    return r.compiled ? r.compiled.accepts(r.snap, eventType) : r.snap.status === 'active';
  }

  tryStep(name: string, event: EventObject): boolean {
    const r = this.rec(name);
    return r !== undefined && this.tryStepRec(r, event);
  }

  /** `tryStep` on an actor the caller holds a reference to (from `spawnRef`); one removed since is looked up by name, as `tryStep` would. */
  tryStepRef(ref: ActorRef, event: EventObject): boolean {
    return ref.alive ? this.tryStepRec(ref, event) : this.tryStep(this.nameOf(ref), event);
  }

  private tryStepRec(r: ActorRecord, event: EventObject): boolean {
    if (r.snap.status !== 'active') return false;
    if (r.compiled !== null) {
      // With nothing queued the event is stepped now, on this snapshot: its guards decide here whether the
      // step would change anything (an unchanged step with no effects is not taken at all). Behind queued
      // events only the configuration's transitions can rule it out.
      const idle = !this.draining && this.head === this.tail;
      if (idle ? !r.compiled.takes(r.snap, event) : !r.compiled.accepts(r.snap, event.type)) return false;
    }
    const before = r.version;
    this.enqueue(r, event);
    return r.version !== before;
  }

  /** The reference of the live actor of this name (undefined: none). */
  refOf(name: string): ActorRef | undefined {
    return this.rec(name);
  }

  done(name: string): boolean {
    return isFinished(this.rec(name)?.snap);
  }

  /** Deadlines armed now, over all actors. */
  get armedDeadlines(): number {
    return this.deadlines.live;
  }

  spawn(name: string, input: unknown): void {
    if (this.rec(name) !== undefined) throw new Error(`actor ${name} already exists`);
    this.spawnRec(name, null, input, roleOf(name), true);
  }

  /**
   * `spawn`, handing back the actor's reference (for `sendRef` and `tryStepRef`). `role`: the name's role
   * (`roleOf(name)`) where the caller has it, so the name is not parsed. The name is not looked up: the
   * caller keeps the names of live actors unique (a duplicate throws at the next lookup by name).
   */
  spawnRef(name: string, input: unknown, role: string = roleOf(name)): ActorRef {
    return this.spawnRec(name, null, input, role, false);
  }

  /**
   * `spawnRef` without a name: `key` names the actor (through the `nameOf` option) when a name is first
   * needed, which for an owner that addresses its actors by reference is seldom or never (the executor
   * built a name string per spawn that nothing read). The caller keeps keys unique among live actors.
   */
  spawnAt(key: unknown, input: unknown, role: string): ActorRef {
    if (this.nameFor === null) throw new Error('PureHost.spawnAt needs the nameOf option');
    return this.spawnRec(null, key, input, role, false);
  }

  /** The actor's name (built now from its key, the first time, for one spawned by `spawnAt`). */
  nameOf(ref: ActorRef): string {
    return ref.name ?? (ref.name = this.nameFor!(ref.nameKey));
  }

  /** `byName`: put it in the table by name now (spawn, which checked the name); else it waits in `unindexed`. */
  private spawnRec(name: string | null, nameKey: unknown, input: unknown, role: string, byName: boolean): ActorRecord {
    const { machine, compiled } = this.machineFor(role);
    const owned = compiled !== null && this.inPlace;
    const step = owned ? compiled.initialOwned(input) : this.stepper.initial(machine, input);
    const snap = step.snap;
    const rec: ActorRecord = { name, nameKey, machine, compiled, snap, timers: null, version: 0, owner: this.calls.ownerOf(name), alive: true, fired: null, slot: -1 };
    if (byName) this.actors.set(name!, rec);
    else rec.slot = this.unindexed.push(rec) - 1;
    if (this.changeObserved) this.calls.onChange(rec, INIT_EVENT, null, false);
    else if (this.onTransition !== null) this.observe(rec, INIT_EVENT, null);
    this.apply(rec, step.effects, step.timers);
    this.drain();
    return rec;
  }

  send(name: string, event: MachineEvent | EventObject): void {
    this.enqueue(name, event);
  }

  /**
   * `send` to an actor the caller holds a reference to: no lookup by name. A reference to an actor
   * removed since resolves by name when the event comes up, as `send` would.
   */
  sendRef(ref: ActorRef, event: MachineEvent | EventObject): void {
    this.enqueue(ref, event);
  }

  /** `to`: the actor's record where the sender holds one, else its name (looked up when the event comes up). */
  private enqueue(to: ActorRecord | string, event: EventObject): void {
    if (!this.draining) {
      // Nothing is queued outside a drain: the event is stepped now, without a trip through the queue.
      this.draining = true;
      try {
        const r = this.target(to);
        if (r !== undefined && r.snap.status === 'active') this.stepOne(r, event);
        this.drainQueued();
      } finally {
        this.endDrain();
      }
      return;
    }
    const q = this.queue;
    const t = this.tail;
    if (t < q.length) {
      q[t] = to;
      q[t + 1] = event;
    } else q.push(to, event);
    this.tail = t + 2;
    this.drain();
  }

  /** The live actor an event is for: a held record, unless its actor was removed meanwhile; then, as for a name, the one of that name now. */
  private target(to: ActorRecord | string): ActorRecord | undefined {
    return typeof to === 'string' ? this.rec(to) : to.alive ? to : this.rec(this.nameOf(to));
  }

  fire(name: string, timerId: string): void {
    const event = { type: timerId };
    const r = this.rec(name);
    if (r !== undefined) r.fired = event;
    this.enqueue(name, event);
  }

  remove(name: string): void {
    const r = this.rec(name);
    if (r !== undefined) this.removeRec(r);
  }

  /** `remove` of an actor the caller holds a reference to (from `spawnRef`); one removed already is left alone. */
  removeRef(ref: ActorRef): void {
    if (ref.alive) this.removeRec(ref);
  }

  /** `done` of an actor the caller holds a reference to: false once it was removed. */
  doneRef(ref: ActorRef): boolean {
    return ref.alive && isFinished(ref.snap);
  }

  private removeRec(r: ActorRecord): void {
    this.cancelAll(r);
    r.alive = false;
    release(r);
    // (An actor in the table by name has its name: index() built it.)
    if (r.slot < 0) this.actors.delete(r.name!);
    else {
      // Out of the list of unindexed actors: the last one takes its place.
      const last = this.unindexed.pop()!;
      if (last !== r) (this.unindexed[r.slot] = last), (last.slot = r.slot);
      r.slot = -1;
    }
    if (r.name === this.lastName) (this.lastName = ''), (this.lastRec = undefined);
  }

  stopAll(): void {
    // Both holders as they are: moving the waiting actors into the table first would be work thrown away.
    for (const holder of [this.actors.values(), this.unindexed] as Iterable<ActorRecord>[]) {
      for (const r of holder) {
        this.cancelAll(r);
        r.alive = false;
        release(r);
        r.slot = -1;
      }
    }
    this.actors.clear();
    this.unindexed.length = 0;
    this.lastName = '';
    this.lastRec = undefined;
    this.deadlines.close();
  }

  /** Every role is added at construction (see addRole), so a role not found here has no machine. */
  private machineFor(role: string): { machine: AnyStateMachine; compiled: CompiledMachine | null } {
    const ms = this.machines;
    for (let i = 0; i < ms.length; i++) if (ms[i]!.role === role) return ms[i]!;
    throw new Error(`no machine for role '${role}'`);
  }

  /**
   * Only the constructor calls this, with the options: the spawn path that inlines machineFor then
   * holds no check of the options object's hidden class (one per server; see the fields above), which
   * deoptimized it when a later server's came.
   */
  private addRole(role: string, opts: PureHostOptions): void {
    const base = opts.machines[role];
    if (!base) throw new Error(`no machine for role '${role}'`);
    const machine = opts.delays ? withDelays(base, opts.delays) : base;
    const compiled = this.stepper instanceof CompiledStepper ? this.stepper.compile(machine) : null;
    // Generate every configuration's code now too: the first requests do not pay for it, and a
    // generator failure shows at construction (the compiler caches per machine: once per process).
    compiled?.generateAll();
    this.machines.push({ role, machine, compiled });
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      this.drainQueued();
    } finally {
      this.endDrain();
    }
  }

  /** Run the queued events in order (events their steps send are queued behind them). */
  private drainQueued(): void {
    while (this.head < this.tail) {
      const q = this.queue;
      const to = q[this.head] as ActorRecord | string;
      const event = q[this.head + 1] as EventObject;
      this.head += 2;
      const rec = this.target(to);
      if (rec !== undefined && rec.snap.status === 'active') this.stepOne(rec, event);
    }
  }

  private endDrain(): void {
    this.drainNow = -1;
    const t = this.tail;
    if (t !== 0) {
      // The events and records are not kept alive by their old slots.
      if ((++this.queuedDrains & (DRAINS_PER_RENEWAL - 1)) === 0) this.queue = newQueue();
      else for (let i = 0; i < t; i++) this.queue[i] = undefined;
      this.tail = 0;
    }
    this.head = 0;
    this.draining = false;
  }

  /** One event's step of an active actor, then its deadlines and effects (apply). */
  private stepOne(rec: ActorRecord, event: EventObject): void {
    // In place, the snapshot object stays and a change shows in `changed`; otherwise a new object is a change.
    const from = rec.snap.value;
    let changed: boolean;
    let effects: readonly EmittedAction[];
    let timers: readonly TimerOp[];
    if (rec.compiled !== null && this.inPlace) {
      ({ changed, effects, timers } = rec.compiled.stepInPlace(rec.snap, event));
    } else {
      const prev = rec.snap;
      const step = this.stepper.step(rec.machine, prev, event);
      rec.snap = step.snap;
      ({ effects, timers } = step);
      changed = step.snap !== prev;
    }
    // A deadline's own event is known by identity: its firing left it on the record.
    const byTimer = rec.fired === event;
    if (byTimer) rec.fired = null;
    if (changed) {
      rec.version++;
      // No record is filled for onChange: the scratch record is an old object, and each of its pointer
      // fields written with a new event or value took V8's slow write barrier.
      if (this.changeObserved) this.calls.onChange(rec, event, from, byTimer);
      else if (this.onTransition !== null) this.observe(rec, event, from);
    }
    this.apply(rec, effects, timers);
  }

  /**
   * Arm and cancel the step's deadlines, route its effects, and end the actor's timers when it is done
   * (only active actors are stepped, so a done snapshot here has just finished).
   */
  private apply(rec: ActorRecord, effects: readonly EmittedAction[], timers: readonly TimerOp[]): void {
    for (const t of timers) {
      if (t.op === 'arm') {
        const list = rec.timers;
        let armed = list !== null ? timerOf(list, t.id) : undefined;
        if (armed === undefined) {
          armed = { due: 0, seq: 0, fire: null, prev: null, next: null, list: null, id: t.id, rec, event: t.event };
          rec.timers = appended(list, armed);
        }
        armed.event = t.event;
        // The clock is read once per run to completion (a runtime call each time): every deadline armed
        // in it counts from the same instant, the one the stimulus was taken at, microseconds apart.
        if (this.drainNow < 0) this.drainNow = this.clock.now();
        this.deadlines.armAs(armed, t.delay, this.fireTimer, this.drainNow);
      } else if (rec.timers !== null) {
        this.deadlines.cancel(timerOf(rec.timers, t.id));
      }
    }
    for (const e of effects) this.calls.route(this, rec.name ?? '', e, rec.owner);
    const next = rec.snap;
    if (next.status === 'done') {
      this.cancelAll(rec);
      this.calls.onDone(this, rec.name ?? '', next.output, rec.owner);
    }
  }

  private cancelAll(rec: ActorRecord): void {
    if (!rec.timers) return;
    for (const t of rec.timers) this.deadlines.cancel(t);
    rec.timers = null;
  }

  /** What a due deadline does: deliver its event (one function for all; a bound method: its code outlives the host). */
  private readonly fireTimer = this.fireDeadline.bind(this);
  private fireDeadline(d: Deadline): void {
    const t = d as ActorTimer;
    if (t.rec.alive) t.rec.fired = t.event;
    // By reference: a lookup by name would put every actor spawned by reference into the table by name.
    this.sendRef(t.rec, t.event);
  }

  private observe(rec: ActorRecord, event: EventObject, from: Snap['value'] | null): void {
    this.onTransition!(transitionRecord(rec, event, from, this.nameOf(rec)));
  }
}
