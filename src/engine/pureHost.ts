import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { EmittedAction, Env, MachineEvent, WorldState } from '../explore/world.js';
import { engineStats, isFinished, pureInitialTransition, pureTransition, roleOf } from '../explore/world.js';
import type { HostOptions, LifecycleHost, TransitionRecord } from './host.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { realClock } from '../core/clock.js';

/**
 * The machines in "reducer mode": one snapshot per actor, stepped with the same pure transition the
 * explorer uses, and deadlines armed as plain timers from the machines' own delayed events. It runs the
 * same machines with the same routing discipline as ActorHost at a fraction of the cost per event (no
 * actor objects, no mailbox, no snapshot observers), but offers no inspection stream: an executor that
 * is inspected uses ActorHost.
 */
export class PureHost implements LifecycleHost {
  private readonly snaps = new Map<string, AnyMachineSnapshot>();
  private readonly machines = new Map<string, AnyStateMachine>();
  private readonly timers = new Map<string, Map<string, TimerHandle>>();
  private readonly clock: Clock;
  private readonly queue: Array<{ actor: string; event: EventObject }> = [];
  private draining = false;
  readonly env: Env;

  constructor(private readonly opts: Omit<HostOptions, 'route' | 'onDone' | 'inspect'> & {
    route(host: PureHost, actor: string, action: EmittedAction): void;
    onDone?(host: PureHost, actor: string, output: unknown): void;
    /** Where deadlines are armed; the simulator passes virtual time. */
    clock?: Clock;
  }) {
    this.env = { ...(opts.initialEnv ?? {}) };
    this.clock = opts.clock ?? realClock;
  }

  get state(): WorldState {
    return { actors: Object.fromEntries(this.snaps), timers: {}, env: this.env, last: null };
  }

  names(): string[] {
    return [...this.snaps.keys()];
  }

  has(name: string): boolean {
    return this.snaps.has(name);
  }

  actor(name: string): AnyMachineSnapshot | undefined {
    return this.snaps.get(name);
  }

  in(name: string, v: string | Record<string, unknown>): boolean {
    const s = this.snaps.get(name);
    return s !== undefined && s.matches(v as never);
  }

  done(name: string): boolean {
    return isFinished(this.snaps.get(name));
  }

  spawn(name: string, input: unknown): void {
    if (this.snaps.has(name)) throw new Error(`actor ${name} already exists`);
    const machine = this.machineFor(roleOf(name));
    const [snap, actions] = pureInitialTransition(machine, input);
    this.snaps.set(name, snap as AnyMachineSnapshot);
    this.timers.set(name, new Map());
    this.observe(name, machine.id, { type: 'xstate.init' }, null, snap as AnyMachineSnapshot);
    this.apply(name, actions as unknown as EmittedAction[], snap as AnyMachineSnapshot, null);
    this.drain();
  }

  send(name: string, event: MachineEvent | EventObject): void {
    this.queue.push({ actor: name, event });
    this.drain();
  }

  fire(name: string, timerId: string): void {
    this.send(name, { type: timerId });
  }

  remove(name: string): void {
    for (const t of this.timers.get(name)?.values() ?? []) this.clock.clearTimeout(t);
    this.timers.delete(name);
    this.snaps.delete(name);
  }

  stopAll(): void {
    for (const n of [...this.snaps.keys()]) this.remove(n);
  }

  private machineFor(role: string): AnyStateMachine {
    let m = this.machines.get(role);
    if (!m) {
      const base = this.opts.machines[role];
      if (!base) throw new Error(`no machine for role '${role}'`);
      m = this.opts.delays ? (base.provide({ delays: this.opts.delays } as never) as AnyStateMachine) : base;
      this.machines.set(role, m);
    }
    return m;
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const { actor, event } = this.queue.shift()!;
        const prev = this.snaps.get(actor);
        if (!prev || prev.status !== 'active') continue;
        const machine = this.machineFor(roleOf(actor));
        const [next, actions] = pureTransition(machine, prev, event);
        engineStats.transitions++;
        this.snaps.set(actor, next);
        if (next !== prev) this.observe(actor, machine.id, event, prev, next);
        this.apply(actor, actions as EmittedAction[], next, prev);
      }
    } finally {
      this.draining = false;
    }
  }

  private apply(actor: string, actions: EmittedAction[], next: AnyMachineSnapshot, prev: AnyMachineSnapshot | null): void {
    const timers = this.timers.get(actor)!;
    for (const a of actions) {
      if (a.type === 'xstate.raise') {
        const p = a.params as unknown as { event: EventObject; id: string; delay?: number };
        if (p.delay === undefined) continue;
        const prevTimer = timers.get(p.id);
        if (prevTimer !== undefined) this.clock.clearTimeout(prevTimer);
        timers.set(
          p.id,
          this.clock.setTimeout(() => {
            timers.delete(p.id);
            this.send(actor, p.event);
          }, p.delay),
        );
      } else if (a.type === 'xstate.cancel') {
        const id = (a.params as unknown as { sendId: string }).sendId;
        const t = timers.get(id);
        if (t !== undefined) this.clock.clearTimeout(t);
        timers.delete(id);
      } else if (!a.type.startsWith('xstate.')) {
        this.opts.route(this, actor, { type: a.type, params: (a.params ?? {}) as Record<string, unknown> });
      }
    }
    if (next.status === 'done' && prev?.status !== 'done') {
      for (const t of timers.values()) this.clock.clearTimeout(t);
      timers.clear();
      this.opts.onDone?.(this, actor, next.output);
    }
  }

  private observe(actor: string, machine: string, event: EventObject, prev: AnyMachineSnapshot | null, next: AnyMachineSnapshot): void {
    const record: TransitionRecord = { actor, machine, event, from: prev ? prev.value : null, to: next.value, status: next.status };
    this.opts.onTransition?.(record);
  }
}
