import { createActor } from 'xstate';
import type { AnyActorRef, AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type { EmittedAction, Env, MachineEvent, ScenarioDefinition, WorldOps, WorldState } from './world.js';
import { enabledChoices, isFinished, roleOf } from './world.js';

/**
 * The same scenario run on live xstate actors instead of pure snapshots: each machine is started with
 * `createActor`, its named actions provided by the engine (here: captured and routed by the scenario,
 * exactly as the explorer routes them). Replaying an explored path here and comparing after every step
 * checks that what the explorer proved holds for the actors the executor runs.
 */
export class LiveWorld implements WorldOps {
  private readonly actors = new Map<string, AnyActorRef>();
  private readonly emitted: Array<{ actor: string; action: EmittedAction }> = [];
  private readonly queue: Array<{ actor: string; event: EventObject }> = [];
  private readonly finished = new Set<string>();
  private routing = false;
  readonly env: Env;

  constructor(readonly scenario: ScenarioDefinition) {
    this.env = { ...scenario.initialEnv };
    scenario.start(this);
  }

  get state(): WorldState {
    const actors: Record<string, AnyMachineSnapshot> = {};
    for (const [n, a] of this.actors) actors[n] = a.getSnapshot() as AnyMachineSnapshot;
    return { actors, timers: {}, env: this.env, last: null };
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
    const machine = this.withCapturedActions(name, this.scenario.machines[roleOf(name)]!);
    const actor = createActor(machine, { input, id: name });
    this.actors.set(name, actor);
    actor.start();
    this.settle(name);
  }

  send(name: string, event: MachineEvent | EventObject): void {
    this.queue.push({ actor: name, event });
    this.pump();
  }

  /** Fire a deadline: the `after` event's type is the timer id. */
  fire(name: string, timerId: string): void {
    this.send(name, { type: timerId });
  }

  /** Apply the choice with this label, as the explorer would. */
  apply(label: string, pure: WorldState): void {
    // The pure world tells which choices exist (timers included); the live world carries them out.
    const choice = enabledChoices(this.scenario, pure).find((c) => c.label === label);
    if (!choice) throw new Error(`choice '${label}' is not enabled`);
    choice.apply(this);
  }

  stop(): void {
    for (const a of this.actors.values()) a.stop();
  }

  private pump(): void {
    if (this.routing) return;
    this.routing = true;
    try {
      while (this.queue.length > 0) {
        const { actor, event } = this.queue.shift()!;
        const ref = this.actors.get(actor);
        if (!ref || (ref.getSnapshot() as AnyMachineSnapshot).status !== 'active') continue;
        ref.send(event);
        this.settle(actor);
      }
    } finally {
      this.routing = false;
    }
  }

  /** Route what the actor asked for, then report it finished if it just reached its final state. */
  private settle(actor: string): void {
    const wasRouting = this.routing;
    this.routing = true;
    try {
      const mine = this.emitted.splice(0);
      for (const e of mine) this.scenario.route(this, e.actor, e.action);
      const s = this.actor(actor)!;
      if (s.status === 'done' && !this.finished.has(actor)) {
        this.finished.add(actor);
        this.scenario.onDone?.(this, actor, s.output);
      }
    } finally {
      this.routing = wasRouting;
    }
    if (!wasRouting) this.pump();
  }

  private withCapturedActions(actor: string, machine: AnyStateMachine): AnyStateMachine {
    const provided: Record<string, (args: unknown, params: unknown) => void> = {};
    for (const [name, impl] of Object.entries(machine.implementations.actions ?? {})) {
      // Built-in actions (assign, raise, ...) carry an `xstate.` type; the engine's effects do not.
      const t = (impl as { type?: unknown }).type;
      if (typeof t === 'string' && t.startsWith('xstate.')) continue;
      provided[name] = (_args, params) => void this.emitted.push({ actor, action: { type: name, params: (params ?? {}) as Record<string, unknown> } });
    }
    return machine.provide({ actions: provided } as never) as AnyStateMachine;
  }
}

/** Differences between a pure world and a live one: actor states, contexts, statuses and the environment. */
export function diffWorlds(pure: WorldState, live: WorldState): string[] {
  const out: string[] = [];
  const names = new Set([...Object.keys(pure.actors), ...Object.keys(live.actors)]);
  for (const n of names) {
    const p = pure.actors[n];
    const l = live.actors[n];
    if (!p || !l) {
      out.push(`${n}: ${p ? 'missing in the live world' : 'missing in the explored world'}`);
      continue;
    }
    if (JSON.stringify(p.value) !== JSON.stringify(l.value)) out.push(`${n}: state ${JSON.stringify(l.value)}, explored ${JSON.stringify(p.value)}`);
    if (JSON.stringify(p.context) !== JSON.stringify(l.context)) out.push(`${n}: context ${JSON.stringify(l.context)}, explored ${JSON.stringify(p.context)}`);
    if (p.status !== l.status) out.push(`${n}: status ${l.status}, explored ${p.status}`);
  }
  if (JSON.stringify(pure.env) !== JSON.stringify(live.env)) out.push(`env ${JSON.stringify(live.env)}, explored ${JSON.stringify(pure.env)}`);
  return out;
}
