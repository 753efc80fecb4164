import { createActor } from 'xstate';
import type { AnyActorRef, AnyMachineSnapshot, AnyStateMachine, EventObject, InspectionEvent, Observer } from 'xstate';
import type { Clock } from '../core/clock.js';
import type { EmittedAction, Env, MachineEvent, WorldOps, WorldState } from '../explore/world.js';
import { isFinished, roleOf } from '../explore/world.js';
import type { Deadline } from './deadlines.js';
import { Deadlines, newDeadline } from './deadlines.js';

/**
 * Hosts live lifecycle actors and routes what they ask for. A machine's named engine actions are
 * provided here: each call is captured and handed to `route` after the transition that made it, so
 * routing runs to completion in order (the same discipline as the explorer's pure engine). Used by the
 * executor's servers and by the replay of explored paths.
 */
export interface TransitionRecord {
  actor: string;
  machine: string;
  event: EventObject;
  from: unknown;
  to: unknown;
  status: string;
  /** `to` as a string (state name, or JSON for nested values), precomputed per configuration where the host can. */
  toKey?: string;
  /** What the host's owner attached to this actor at spawn (PureHost's `ownerOf`), so it needs no lookup by name. */
  owner?: unknown;
}

/** What an executor needs of a host of lifecycle actors (ActorHost: live actors; PureHost: reducer mode). */
export interface LifecycleHost extends WorldOps {
  /**
   * False only when an event of this type certainly changes nothing for the actor (compiled machines
   * know it per configuration); true when it may. The executor skips offering loop events on false.
   */
  accepts?(name: string, eventType: string): boolean;
  /**
   * A number that changes whenever the actor's snapshot changes, for hosts whose snapshots are updated
   * in place (identity then says nothing). Without it, a new snapshot object means a change.
   */
  version?(name: string): number;
  /**
   * Deliver `event` to the actor if it is active and would take a transition (`accepts`, and where the
   * step would run now, its guards: CompiledMachine.takes); true when its snapshot changed. The loop's offer in one lookup of the actor instead of four (snapshot, accepts, version
   * before and after the send).
   */
  tryStep?(name: string, event: EventObject): boolean;
  names(): string[];
  has(name: string): boolean;
  remove(name: string): void;
  stopAll(): void;
}

export interface HostOptions {
  /** Machine per role; an actor named `r7.handle` runs the `handle` role's machine. */
  machines: Record<string, AnyStateMachine>;
  route(host: ActorHost, actor: string, action: EmittedAction): void;
  onDone?(host: ActorHost, actor: string, output: unknown): void;
  /** Delay implementations (milliseconds) given to every machine. */
  delays?: Record<string, number>;
  /** Observer of every actor's transitions (trace, logs, metrics). */
  onTransition?(record: TransitionRecord): void;
  /**
   * Raw xstate inspection events, e.g. for the inspector: whatever `createActor(…, { inspect })` takes,
   * so `@statelyai/inspect`'s `inspector.inspect` observer can be passed as is.
   */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /**
   * Whether onTransition needs the event of every transition (a trace does). Without it the host
   * observes snapshots only, which costs about half as much per event.
   */
  recordEvents?: boolean;
  initialEnv?: Env;
  /** Prefix of the xstate actor ids (e.g. 'gen/'), so actors of several hosts stay apart in an inspector. */
  idPrefix?: string;
  /**
   * Time for the machines' deadlines. Given, xstate's delayed events are armed on one clock timer per
   * host (the Deadlines PureHost uses: the same firing order, ties in arming order) and what a deadline's
   * step asked for is routed before the clock's callback returns, as PureHost does; the simulator passes
   * virtual time. Without it, xstate arms a `setTimeout` per deadline and a fired deadline's actions are
   * routed in a microtask.
   */
  clock?: Clock;
}

const INIT: EventObject = { type: 'xstate.init' };

/** One of xstate's delayed events on the host's deadlines: `run` is xstate's relay of it. */
interface RelayDeadline extends Deadline {
  run: () => void;
}

export class ActorHost implements LifecycleHost {
  private readonly actors = new Map<string, AnyActorRef>();
  private readonly provided = new Map<string, AnyStateMachine>();
  private readonly emitted: Array<{ actor: string; action: EmittedAction }> = [];
  private readonly queue: Array<{ actor: string; event: EventObject }> = [];
  private readonly finished = new Set<string>();
  /** The event being delivered to each actor by send(); anything else that changes it is a deadline. */
  private readonly sending = new Map<string, EventObject>();
  private routing = false;
  readonly env: Env;

  private readonly prefix: string;
  /** The last snapshot object each actor was seen with (a step that left it the same is not a transition), and its value the next one's `from`. */
  private readonly lastSnap = new Map<string, AnyMachineSnapshot>();
  /** The machines' deadlines, on the given clock (see HostOptions.clock); null: xstate's own timers. */
  private readonly deadlines: Deadlines | null;
  /** xstate's Clock (the Clock's timer half) over `deadlines`. */
  private readonly xstateClock: Pick<Clock, 'setTimeout' | 'clearTimeout'> | undefined;
  /** Actors a deadline stepped since the clock's callback began (their actions are routed when it returns). */
  private readonly byDeadline: string[] = [];

  constructor(private readonly opts: HostOptions) {
    this.env = { ...(opts.initialEnv ?? {}) };
    this.prefix = opts.idPrefix ?? '';
    const clock = opts.clock;
    if (clock === undefined) {
      this.deadlines = null;
      this.xstateClock = undefined;
    } else {
      const deadlines = (this.deadlines = new Deadlines(clock));
      // xstate hands its relay of the delayed event as `fn`: it steps the actor now (the observer notes it
      // in byDeadline), then what that step asked for is routed, before the next deadline fires.
      const fire = (d: Deadline) => {
        (d as RelayDeadline).run();
        this.settleDeadlines();
      };
      this.xstateClock = {
        setTimeout: (fn, ms) => deadlines.armAs<RelayDeadline>({ ...newDeadline(), run: fn }, ms, fire),
        clearTimeout: (id) => deadlines.cancel(id as RelayDeadline),
      };
    }
  }

  /** Route what the deadlines that just fired asked for, and report the actors they finished. */
  private settleDeadlines(): void {
    while (this.byDeadline.length > 0) this.settle(this.byDeadline.shift()!);
  }

  /** Deadlines armed now, over all actors (only with a clock given; else 0). */
  get armedDeadlines(): number {
    return this.deadlines?.live ?? 0;
  }

  get state(): WorldState {
    const actors: Record<string, AnyMachineSnapshot> = {};
    for (const [n, a] of this.actors) actors[n] = a.getSnapshot() as AnyMachineSnapshot;
    return { actors, timers: {}, env: this.env, last: null };
  }

  names(): string[] {
    return [...this.actors.keys()];
  }

  has(name: string): boolean {
    return this.actors.has(name);
  }

  actor(name: string): AnyMachineSnapshot | undefined {
    return this.actors.get(name)?.getSnapshot() as AnyMachineSnapshot | undefined;
  }

  in(name: string, v: string | Record<string, unknown>): boolean {
    const s = this.actor(name);
    return s !== undefined && s.matches(v as never);
  }

  done(name: string): boolean {
    return isFinished(this.actor(name));
  }

  spawn(name: string, input: unknown): void {
    if (this.actors.has(name)) throw new Error(`actor ${name} already exists`);
    const role = roleOf(name);
    const machine = this.machineFor(role);
    const viaInspect = this.opts.inspect !== undefined || this.opts.recordEvents === true;
    const actor = createActor(machine, {
      input,
      id: `${this.prefix}${name}`,
      ...(this.xstateClock !== undefined ? { clock: this.xstateClock } : {}),
      ...(viaInspect ? { inspect: (ev: InspectionEvent) => this.observe(name, machine.id, ev) } : {}),
    });
    this.actors.set(name, actor);
    if (!viaInspect) {
      actor.subscribe({
        next: (snap: AnyMachineSnapshot) => this.observed(name, machine.id, this.sending.get(name) ?? { type: 'xstate.after' }, snap),
        error: () => {},
      });
    }
    // The subscription hears of the first snapshot at start: as the init's (an event absent from
    // `sending` is taken for a deadline's).
    this.sending.set(name, INIT);
    actor.start();
    this.sending.delete(name);
    if (!viaInspect) this.observed(name, machine.id, INIT, actor.getSnapshot() as AnyMachineSnapshot);
    this.settle(name);
  }

  send(name: string, event: MachineEvent | EventObject): void {
    this.queue.push({ actor: name, event });
    this.pump();
  }

  /** Fire a deadline by hand: the `after` event's type is the timer id. */
  fire(name: string, timerId: string): void {
    this.send(name, { type: timerId });
  }

  /** Stop and forget an actor (its deadlines are cancelled). */
  remove(name: string): void {
    const a = this.actors.get(name);
    if (!a) return;
    a.stop();
    this.actors.delete(name);
    this.finished.delete(name);
    this.lastSnap.delete(name);
  }

  stopAll(): void {
    for (const n of [...this.actors.keys()]) this.remove(n);
    this.deadlines?.close();
  }

  private machineFor(role: string): AnyStateMachine {
    const cached = this.provided.get(role);
    if (cached) return cached;
    const base = this.opts.machines[role];
    if (!base) throw new Error(`no machine for role '${role}'`);
    const actions: Record<string, (args: { self: AnyActorRef }, params: unknown) => void> = {};
    for (const [name, impl] of Object.entries(base.implementations.actions ?? {})) {
      // Built-in actions (assign, raise, ...) carry an `xstate.` type; the engine's effects do not.
      const t = (impl as { type?: unknown }).type;
      if (typeof t === 'string' && t.startsWith('xstate.')) continue;
      actions[name] = ({ self }, params) => void this.emitted.push({ actor: self.id.slice(this.prefix.length), action: { type: name, params: (params ?? {}) as Record<string, unknown> } });
    }
    const m = base.provide({ actions, ...(this.opts.delays ? { delays: this.opts.delays } : {}) } as never) as AnyStateMachine;
    this.provided.set(role, m);
    return m;
  }

  private observe(name: string, machine: string, ev: InspectionEvent): void {
    const i = this.opts.inspect;
    if (typeof i === 'function') i(ev);
    else i?.next?.(ev);
    if (ev.type !== '@xstate.snapshot' || (ev.actorRef as AnyActorRef).id !== `${this.prefix}${name}`) return;
    this.observed(name, machine, ev.event, ev.snapshot as AnyMachineSnapshot);
  }

  private observed(name: string, machine: string, event: EventObject, snap: AnyMachineSnapshot): void {
    // xstate notifies its observers of every event it processed, also of one that left the snapshot as it
    // was: that is no transition, as PureHost counts them (an observer that put the actor back in the
    // executor's ready set on each would have its loop offer it events forever).
    const last = this.lastSnap.get(name);
    if (last !== snap) {
      this.lastSnap.set(name, snap);
      const from = last?.value ?? null;
      this.opts.onTransition?.({ actor: name, machine, event, from, to: snap.value, status: snap.status });
    }
    // A deadline fires outside send(): route what it asked for (on the host's clock, when its callback
    // returns), also when its step left the snapshot as it was (a targetless transition's actions).
    if (!this.routing && event.type.startsWith('xstate.after')) {
      if (this.deadlines !== null) this.byDeadline.push(name);
      else queueMicrotask(() => this.settle(name));
    }
  }

  private pump(): void {
    if (this.routing) return;
    this.routing = true;
    try {
      while (this.queue.length > 0) {
        const { actor, event } = this.queue.shift()!;
        const ref = this.actors.get(actor);
        if (!ref || (ref.getSnapshot() as AnyMachineSnapshot).status !== 'active') continue;
        this.sending.set(actor, event);
        ref.send(event);
        this.sending.delete(actor);
        this.settle(actor);
      }
    } finally {
      this.routing = false;
    }
  }

  /** Route what actors asked for, then report an actor finished if it just reached its final state. */
  private settle(actor: string): void {
    const wasRouting = this.routing;
    this.routing = true;
    try {
      while (this.emitted.length > 0) {
        const e = this.emitted.shift()!;
        this.opts.route(this, e.actor, e.action);
      }
      const s = this.actor(actor);
      if (s && s.status === 'done' && !this.finished.has(actor)) {
        this.finished.add(actor);
        this.opts.onDone?.(this, actor, s.output);
      }
    } finally {
      this.routing = wasRouting;
    }
    if (!wasRouting) this.pump();
  }
}
