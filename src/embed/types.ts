import type { AnyStateMachine, EventFromLogic, InputFrom, OutputFrom, SnapshotFrom, StateMachine } from 'xstate';
import type { EngineActionName as AnyEngineActionName } from './engineActions.js';

/**
 * Types derived from the machines themselves, so an embedding engine is checked against the machine it
 * embeds: its named engine actions and their params, its delays, inputs, events, state values, output.
 */

/** Every named action of a machine (engine effects and bookkeeping alike) as `{ type, params }`. */
export type ActionOf<M> = M extends StateMachine<any, any, any, any, infer A, any, any, any, any, any, any, any, any, any, any> ? A : never;

/** The names of the actions an engine must implement for this machine (its effects, not its `assign`s). */
export type EngineActionNameOf<M> = Extract<ActionOf<M>['type'], AnyEngineActionName>;

/** The params one engine action of a machine is called with, as the machine declares them. */
export type ActionParams<M, K extends string> = Extract<ActionOf<M>, { type: K }> extends { params?: infer P } ? P : never;

/** The machine's delay names (its deadlines). */
export type DelayOf<M> = M extends StateMachine<any, any, any, any, any, any, infer D, any, any, any, any, any, any, any, any> ? D : never;

/** The machine's full state value (string for flat machines, an object per region for parallel ones). */
export type StateValueOf<M> = M extends StateMachine<any, any, any, any, any, any, any, infer V, any, any, any, any, any, any, any> ? V : never;

/**
 * What `matches` accepts in practice: a full state value, a parent state's name, or a partial object
 * naming only some regions (`{ worker: 'awaitingReady' }`). Misspelled names are not assignable.
 */
export type StateQuery<V> = V extends string ? V : V extends object ? (keyof V & string) | { [K in keyof V]?: StateQuery<V[K]> } : never;

export type { EventFromLogic, InputFrom, OutputFrom, SnapshotFrom };

/** The machines an engine hosts, by role: an actor `r7.handle` runs the `handle` role's machine. */
export type MachinesByRole = Record<string, AnyStateMachine>;
export type RoleOf<Ms extends MachinesByRole> = keyof Ms & string;

/** A typed actor address: `{ request, role }`, or the `<request>.<role>` string it stands for. */
export type ActorAddress<R extends string = string> = { request: string; role: R } | `${string}.${R}`;

/** Delays per role, each under its machine's own delay names. */
export type RoleDelays<Ms extends MachinesByRole> = { [R in RoleOf<Ms>]?: Partial<Record<DelayOf<Ms[R]>, number>> };

/** One engine action as a discriminated union over roles and action names, with its own params. */
export type EngineAction<Ms extends MachinesByRole> = {
  [R in RoleOf<Ms>]: { [K in EngineActionNameOf<Ms[R]>]: { role: R; type: K; params: ActionParams<Ms[R], K> } }[EngineActionNameOf<Ms[R]>];
}[RoleOf<Ms>];
