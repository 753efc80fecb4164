import type { InspectionEvent, Observer } from 'xstate';
import { ActorHost } from '../engine/host.js';
import type { TransitionRecord } from '../engine/host.js';
import type { EmittedAction } from '../explore/world.js';
import { checkActions, checkDelays, EmbeddingError } from './provide.js';
import type { ActionParams, ActorAddress, EngineActionNameOf, EventFromLogic, InputFrom, MachinesByRole, OutputFrom, RoleDelays, RoleOf, SnapshotFrom, StateQuery, StateValueOf } from './types.js';

/** Where an engine action or an output came from: the host, and the actor's request and role. */
export interface ActorAt<Ms extends MachinesByRole, R extends RoleOf<Ms>> {
  host: EngineHost<Ms>;
  request: string;
  role: R;
  /** The actor's name, `<request>.<role>`. */
  actor: `${string}.${R}`;
}

/** Per role, an implementation of every engine action of that role's machine, each with its own params. */
export type EngineActions<Ms extends MachinesByRole> = {
  [R in RoleOf<Ms>]: { [K in EngineActionNameOf<Ms[R]>]: (params: ActionParams<Ms[R], K>, at: ActorAt<Ms, R>) => void };
};

export interface EngineHostOptions<Ms extends MachinesByRole> {
  /** The machine each role runs; an actor `r7.handle` runs `machines.handle`. */
  machines: Ms;
  /** Every engine action of every role (a missing one is a type error and, at run time, an EmbeddingError). */
  actions: EngineActions<Ms>;
  /** Called once when an actor of that role reaches its final state, with the machine's typed output. */
  onDone?: { [R in RoleOf<Ms>]?: (output: OutputFrom<Ms[R]>, at: ActorAt<Ms, R>) => void };
  /** Deadlines (ms) per role under each machine's own delay names: the same name can bound different things in two machines. */
  delays?: RoleDelays<Ms>;
  /** xstate's inspection observer, as `createActor(…, { inspect })` takes it (e.g. `@statelyai/inspect`'s `inspector.inspect`). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  onTransition?(record: TransitionRecord): void;
  /** Prefix of the xstate actor ids, so the actors of several hosts stay apart in an inspector. */
  idPrefix?: string;
}

/** `{ request, role }` or `'<request>.<role>'` → the actor's name and its parts. */
export function parseActorAddress(address: ActorAddress | string): { actor: string; request: string; role: string } {
  if (typeof address === 'string') {
    const dot = address.lastIndexOf('.');
    if (dot <= 0) throw new EmbeddingError(`actor address '${address}' is not <request>.<role>`);
    return { actor: address, request: address.slice(0, dot), role: address.slice(dot + 1) };
  }
  return { actor: `${address.request}.${address.role}`, request: address.request, role: address.role };
}

/**
 * A typed host of lifecycle actors for an embedding engine. Each role's machine is provided with the
 * engine's actions (called after the transition that asked for them, in order, as ActorHost does) and
 * its own deadlines. Addresses, events, spawn inputs, state checks and outputs are typed per role.
 */
export class EngineHost<Ms extends MachinesByRole> {
  readonly raw: ActorHost;

  constructor(private readonly opts: EngineHostOptions<Ms>) {
    const machines: MachinesByRole = {};
    for (const [role, machine] of Object.entries(opts.machines)) {
      checkActions(machine, (opts.actions as Record<string, object>)[role] ?? {}, `role '${role}'`);
      const delays = (opts.delays as Record<string, object> | undefined)?.[role];
      if (delays) checkDelays(machine, delays, `role '${role}'`);
      machines[role] = delays ? machine.provide({ delays } as never) : machine;
    }
    for (const role of Object.keys(opts.actions)) if (!(role in opts.machines)) throw new EmbeddingError(`actions given for role '${role}', which has no machine`);
    this.raw = new ActorHost({
      machines,
      route: (_h, actor, action) => this.route(actor, action),
      onDone: (_h, actor, output) => this.output(actor, output),
      ...(opts.inspect ? { inspect: opts.inspect } : {}),
      ...(opts.onTransition ? { onTransition: opts.onTransition } : {}),
      ...(opts.idPrefix ? { idPrefix: opts.idPrefix } : {}),
    });
  }

  spawn<R extends RoleOf<Ms>>(address: ActorAddress<R>, input: NoInfer<InputFrom<Ms[R]>>): void {
    this.raw.spawn(parseActorAddress(address).actor, input);
  }

  send<R extends RoleOf<Ms>>(address: ActorAddress<R>, event: NoInfer<EventFromLogic<Ms[R]>>): void {
    this.raw.send(parseActorAddress(address).actor, event);
  }

  /** Whether the actor exists and is in that state (a state name, a parent's, or some regions of a parallel machine). */
  in<R extends RoleOf<Ms>>(address: ActorAddress<R>, state: NoInfer<StateQuery<StateValueOf<Ms[R]>>>): boolean {
    return this.raw.in(parseActorAddress(address).actor, state as string | Record<string, unknown>);
  }

  snapshot<R extends RoleOf<Ms>>(address: ActorAddress<R>): SnapshotFrom<Ms[R]> | undefined {
    return this.raw.actor(parseActorAddress(address).actor) as SnapshotFrom<Ms[R]> | undefined;
  }

  has(address: ActorAddress<RoleOf<Ms>>): boolean {
    return this.raw.has(parseActorAddress(address).actor);
  }

  /** Whether the actor reached a final state (or carries the `finished` tag). */
  done(address: ActorAddress<RoleOf<Ms>>): boolean {
    return this.raw.done(parseActorAddress(address).actor);
  }

  remove(address: ActorAddress<RoleOf<Ms>>): void {
    this.raw.remove(parseActorAddress(address).actor);
  }

  names(): Array<`${string}.${RoleOf<Ms>}`> {
    return this.raw.names() as Array<`${string}.${RoleOf<Ms>}`>;
  }

  stopAll(): void {
    this.raw.stopAll();
  }

  private output(actor: string, output: unknown): void {
    const { request, role } = parseActorAddress(actor);
    const cb = (this.opts.onDone as Record<string, ((o: unknown, at: unknown) => void) | undefined> | undefined)?.[role];
    cb?.(output, { host: this, request, role, actor });
  }

  private route(actor: string, action: EmittedAction): void {
    const { request, role } = parseActorAddress(actor);
    const impl = (this.opts.actions as Record<string, Record<string, (p: unknown, at: unknown) => void>>)[role]?.[action.type];
    // Checked at construction; reaching here means a machine named an action its implementations lack.
    if (!impl) throw new EmbeddingError(`role '${role}': engine action ${action.type} not provided`);
    impl(action.params, { host: this, request, role, actor });
  }
}
