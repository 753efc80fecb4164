import { createEmptyActor } from 'xstate';
import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';
import type {
  AdmissionEvent,
  BlockLeaseEvent,
  ContextSendEvent,
  FenceClientEvent,
  GenerationReceiveEvent,
  PeerSessionEvent,
  RequestLifecycleEvent,
  TransferHandleEvent,
} from '../../machines/index.js';

/** Every event any lifecycle machine accepts (a typo in a routed event is a type error). */
export type MachineEvent =
  | TransferHandleEvent
  | ContextSendEvent
  | GenerationReceiveEvent
  | RequestLifecycleEvent
  | BlockLeaseEvent
  | AdmissionEvent
  | PeerSessionEvent
  | FenceClientEvent
  /** An executor loop iteration: only regression variants that retry something (a refused cancel) accept it. */
  | { type: 'LOOP_TICK' };

/**
 * The product of several real machines and their environment, stepped with xstate's pure
 * `transition()`. Each explorer step is one nondeterministic choice (deliver a peer message, complete
 * a transfer, fire a deadline, run a worker step or a status poll); the machines' named actions are
 * routed by the scenario into events for other machines or into environment state.
 */

/** A named action a machine asked for, as returned by the pure transition. */
export interface EmittedAction {
  type: string;
  params: Record<string, unknown>;
}

/** An armed `after` deadline of one actor. */
export interface ArmedTimer {
  id: string;
  event: EventObject;
  delay: number;
}

/** JSON-serializable environment state owned by a scenario. */
export type Env = Record<string, string | number | boolean | null>;

export interface WorldState {
  /** Snapshot per actor; absent until the scenario spawns it. */
  actors: Record<string, AnyMachineSnapshot>;
  timers: Record<string, ArmedTimer[]>;
  env: Env;
  /** What the step that produced this world did: not part of the state's identity. */
  last: StepRecord | null;
}

export interface StepRecord {
  label: string;
  kind: ChoiceKind;
  request?: string;
  actions: Array<{ actor: string; action: EmittedAction }>;
  /** Per actor, its state before and after this step (serialized values). */
  changes: Record<string, [string | null, string]>;
  /** Every machine transition taken in this step, in order (for transition coverage). */
  transitions: Array<{ actor: string; event: string; from: string | null; to: string }>;
}

/**
 * 'local' choices are made by the executor itself (deadlines, worker steps, status polls, synchronous
 * native results): no peer can withhold them. 'env' choices depend on peers, the network, the backend
 * or the user, any of which may never happen. Liveness (L2) uses only local choices.
 */
export type ChoiceKind = 'local' | 'env';

export interface Choice {
  label: string;
  kind: ChoiceKind;
  /** The request this choice acts for, when it acts for one (L4 checks each request's own progress). */
  request?: string;
  apply(w: WorldOps): void;
}

/** What a scenario provides: its actors' machines, its routing and its environment's choices. */
export interface ScenarioDefinition {
  name: string;
  description: string;
  /** The machine each actor runs (a role name → machine); variants substitute entries here. */
  machines: Record<string, AnyStateMachine>;
  initialEnv: Env;
  /** Actors spawned at the start, with their input. */
  start(w: WorldOps): void;
  /** Turn one named action of an actor into events and environment changes. */
  route(w: WorldOps, actor: string, action: EmittedAction): void;
  /** Called once when an actor reaches its final state. */
  onDone?(w: WorldOps, actor: string, output: unknown): void;
  /** The environment's and executor's enabled choices in this world (timers are added generically). */
  choices(w: WorldView): Choice[];
  /** A world where nothing is left to do: every request settled and every lease back in a rest state. */
  isSettled(w: WorldView): boolean;
  /** Structural facts the invariants need about this scenario's actors. */
  facts: ScenarioFacts;
}

export interface LeaseFacts {
  /** The blockLease actor. */
  name: string;
  /** The request it belongs to (its actors are named `<request>.<role>`). */
  request: string;
  /** Whether the lease's owner has finished with it (S4: only then may it return to the pool). */
  ownerFinished(w: WorldView): boolean;
  /** Whether a transfer can still touch the lease's memory in this world (ground truth, S5). */
  touched(w: WorldView): boolean;
}

export interface ScenarioFacts {
  requests: string[];
  leases: LeaseFacts[];
  /** Ground truth for S7: the request's data and its sync notification really arrived. */
  dataArrived?(w: WorldView, request: string): boolean;
  /** Whether this request is settled (L4 checks each request on its own). */
  requestSettled(w: WorldView, request: string): boolean;
}

export interface WorldView {
  readonly state: WorldState;
  actor(name: string): AnyMachineSnapshot | undefined;
  env: Env;
  /** Whether the actor exists and is in the given state (xstate `matches`). */
  in(name: string, stateValue: string | Record<string, unknown>): boolean;
  /** Whether the actor exists and is finished (see isFinished). */
  done(name: string): boolean;
}

/**
 * What routing and choices may do to a world while a step is applied. Implemented over pure snapshots
 * (WorldDraft, for exploration) and over live actors (LiveWorld, for replaying paths), so both run the
 * same scenario code.
 */
export interface WorldOps extends WorldView {
  spawn(name: string, input: unknown): void;
  send(name: string, event: MachineEvent | EventObject): void;
  fire(name: string, timerId: string): void;
}

/**
 * xstate's public `transition()` builds a throw-away actor on every call (~15–40 µs here); the
 * machines here spawn nothing, so one reused inert scope gives the same pure step for a fraction.
 */
const scopeActions: unknown[] = [];
const inertScope = (() => {
  const self = createEmptyActor();
  return { self, defer: () => {}, id: '', logger: () => {}, sessionId: '', stopChild: () => {}, system: self.system, emit: () => {}, actionExecutor: (a: unknown) => void scopeActions.push(a) };
})();

export function pureTransition(machine: AnyStateMachine, snapshot: AnyMachineSnapshot, event: EventObject): [AnyMachineSnapshot, unknown[]] {
  scopeActions.length = 0;
  const next = machine.transition(snapshot, event, inertScope as never) as AnyMachineSnapshot;
  return [next, scopeActions.splice(0)];
}

/** `initialTransition` with the same reused inert scope (the public one builds an actor per call). */
export function pureInitialTransition(machine: AnyStateMachine, input: unknown): [AnyMachineSnapshot, unknown[]] {
  scopeActions.length = 0;
  const snap = machine.getInitialSnapshot(inertScope as never, input as never) as AnyMachineSnapshot;
  return [snap, scopeActions.splice(0)];
}

/** Counts of work done by the pure engine (read by the explore benchmark). */
export const engineStats = { transitions: 0 };

/** A mutable copy of a world, used while one step is applied. */
export class WorldDraft implements WorldOps {
  readonly state: WorldState;
  private readonly queue: Array<{ actor: string; event: EventObject }> = [];
  private draining = false;

  constructor(
    readonly scenario: ScenarioDefinition,
    prev: WorldState,
    label: string,
    kind: ChoiceKind,
    request?: string,
  ) {
    this.state = {
      actors: { ...prev.actors },
      timers: { ...prev.timers },
      env: { ...prev.env },
      last: { label, kind, request, actions: [], changes: {}, transitions: [] },
    };
  }

  get env(): Env {
    return this.state.env;
  }

  actor(name: string): AnyMachineSnapshot | undefined {
    return this.state.actors[name];
  }

  in(name: string, stateValue: string | Record<string, unknown>): boolean {
    const s = this.state.actors[name];
    return s !== undefined && s.matches(stateValue as never);
  }

  done(name: string): boolean {
    return isFinished(this.state.actors[name]);
  }

  /** Create an actor (its entry actions and deadlines take effect at once). */
  spawn(name: string, input: unknown): void {
    if (this.state.actors[name]) throw new Error(`actor ${name} already exists`);
    const machine = this.machineOf(name);
    const [snap, actions] = pureInitialTransition(machine, input);
    this.record(name, null, snap, 'xstate.init');
    this.state.actors[name] = snap;
    this.state.timers[name] = [];
    this.handleActions(name, actions as unknown as EmittedAction[]);
    this.afterTransition(name, undefined, snap);
    this.drain();
  }

  /** Deliver an event to an actor, after any events already queued in this step (run-to-completion). */
  send(name: string, event: MachineEvent | EventObject): void {
    this.queue.push({ actor: name, event });
    this.drain();
  }

  /** Fire one armed deadline of an actor. */
  fire(name: string, timerId: string): void {
    const timers = this.state.timers[name] ?? [];
    const t = timers.find((x) => x.id === timerId);
    if (!t) throw new Error(`no armed timer ${timerId} on ${name}`);
    this.state.timers[name] = timers.filter((x) => x.id !== timerId);
    this.send(name, t.event);
  }

  private machineOf(name: string): AnyStateMachine {
    const role = roleOf(name);
    const m = this.scenario.machines[role];
    if (!m) throw new Error(`scenario ${this.scenario.name} has no machine for role ${role}`);
    return m;
  }

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const { actor, event } = this.queue.shift()!;
        const prev = this.state.actors[actor];
        // Events to an actor that does not exist or has finished are dropped, as a stopped actor would.
        if (!prev || prev.status !== 'active') continue;
        const [next, actions] = pureTransition(this.machineOf(actor), prev, event);
        engineStats.transitions++;
        // A transition without a target or assignment returns the same snapshot but may still act.
        if (next !== prev) {
          this.record(actor, prev, next, event.type);
          this.state.actors[actor] = next;
        } else {
          // Recorded for transition coverage (an explicitly ignored event is a handled pair too).
          this.state.last!.transitions.push({ actor, event: event.type, from: valueKey(prev), to: valueKey(next) });
        }
        this.handleActions(actor, actions as unknown as EmittedAction[]);
        this.afterTransition(actor, prev, next);
      }
    } finally {
      this.draining = false;
    }
  }

  private record(actor: string, prev: AnyMachineSnapshot | null, next: AnyMachineSnapshot, event: string): void {
    const last = this.state.last!;
    const before = actor in last.changes ? last.changes[actor]![0] : prev ? valueKey(prev) : null;
    last.changes[actor] = [before, valueKey(next)];
    last.transitions.push({ actor, event, from: prev ? valueKey(prev) : null, to: valueKey(next) });
  }

  private handleActions(actor: string, actions: EmittedAction[]): void {
    for (const a of actions) {
      if (a.type === 'xstate.raise') {
        const p = a.params as { event: EventObject; id: string; delay?: number };
        if (p.delay !== undefined) {
          this.state.timers[actor] = [...(this.state.timers[actor] ?? []).filter((t) => t.id !== p.id), { id: p.id, event: p.event, delay: p.delay }];
        }
        continue;
      }
      if (a.type === 'xstate.cancel') {
        const p = a.params as { sendId: string };
        this.state.timers[actor] = (this.state.timers[actor] ?? []).filter((t) => t.id !== p.sendId);
        continue;
      }
      if (a.type.startsWith('xstate.')) continue;
      this.state.last!.actions.push({ actor, action: { type: a.type, params: (a.params ?? {}) as Record<string, unknown> } });
      this.scenario.route(this, actor, { type: a.type, params: (a.params ?? {}) as Record<string, unknown> });
    }
  }

  private afterTransition(actor: string, prev: AnyMachineSnapshot | undefined, next: AnyMachineSnapshot): void {
    if (next.status === 'done' && prev?.status !== 'done') {
      this.state.timers[actor] = [];
      this.scenario.onDone?.(this, actor, next.output);
    }
  }
}

/** `r1.handle` → `r1` (actors without a prefix belong to no request). */
export function requestOf(actorName: string): string | undefined {
  const i = actorName.lastIndexOf('.');
  return i < 0 ? undefined : actorName.slice(0, i);
}

/** `r1.handle` → `handle`: the role picks the machine, the prefix names the request. */
export function roleOf(actorName: string): string {
  const i = actorName.lastIndexOf('.');
  return i < 0 ? actorName : actorName.slice(i + 1);
}

export function valueKey(s: AnyMachineSnapshot): string {
  return typeof s.value === 'string' ? s.value : JSON.stringify(s.value);
}

/** An actor is finished when it is done, or rests in a state tagged `finished` (a lifecycle that freed its request). */
export function isFinished(s: AnyMachineSnapshot | undefined): boolean {
  return s !== undefined && (s.status === 'done' || s.hasTag('finished'));
}

/** A read-only view over a world (no stepping). */
export function view(state: WorldState): WorldView {
  return {
    state,
    env: state.env,
    actor: (n) => state.actors[n],
    in: (n, v) => state.actors[n] !== undefined && state.actors[n]!.matches(v as never),
    done: (n) => isFinished(state.actors[n]),
  };
}

export function initialWorld(scenario: ScenarioDefinition): WorldState {
  const empty: WorldState = { actors: {}, timers: {}, env: { ...scenario.initialEnv }, last: null };
  const d = new WorldDraft(scenario, empty, 'start', 'local');
  scenario.start(d);
  return { ...d.state, last: null };
}

/** Every choice enabled in a world: the scenario's, plus one per armed deadline. */
export function enabledChoices(scenario: ScenarioDefinition, state: WorldState): Choice[] {
  const choices = scenario.choices(view(state));
  for (const [actor, timers] of Object.entries(state.timers)) {
    for (const t of timers) {
      // A deadline of Infinity is a wait with no deadline: it never fires.
      if (!Number.isFinite(t.delay)) continue;
      choices.push({ label: `deadline ${actor}: ${timerName(t.id)}`, kind: 'local', request: requestOf(actor), apply: (w) => w.fire(actor, t.id) });
    }
  }
  return choices;
}

/** `xstate.after.kvTransferTimeout.contextSend.sender.queued` → `kvTransferTimeout in sender.queued`. */
export function timerName(id: string): string {
  const m = /^xstate\.after\.([^.]+)\.[^.]+\.(.*)$/.exec(id);
  return m ? `${m[1]} in ${m[2]}` : id;
}

export function step(scenario: ScenarioDefinition, state: WorldState, label: string): WorldState {
  const choice = enabledChoices(scenario, state).find((c) => c.label === label);
  if (!choice) throw new Error(`choice '${label}' is not enabled`);
  const d = new WorldDraft(scenario, state, label, choice.kind, choice.request);
  choice.apply(d);
  return d.state;
}

/** The identity of a world for the graph: each actor's state and context, its deadlines, the environment. */
export function serializeWorld(state: WorldState): string {
  const names = Object.keys(state.actors).sort();
  const parts = names.map((n) => {
    const s = state.actors[n]!;
    const timers = (state.timers[n] ?? []).map((t) => t.id).sort();
    return [n, s.status, s.value, s.context, timers];
  });
  const env = Object.keys(state.env)
    .sort()
    .map((k) => [k, state.env[k]]);
  return JSON.stringify([parts, env]);
}
