import type { AnyStateMachine, ContextFrom, EventFromLogic } from 'xstate';
import { engineActionsOf, missingEngineActions } from './engineActions.js';
import type { ActionParams, DelayOf, EngineActionNameOf } from './types.js';

/** A mistake in how an engine embeds a machine (a missing or unknown action, an unknown role or delay). */
export class EmbeddingError extends Error {
  override readonly name = 'EmbeddingError';
}

/** Implementations of every engine action of machine M, each taking that action's own params. */
export type ProvidedActions<M extends AnyStateMachine> = {
  [K in EngineActionNameOf<M>]: (args: { context: ContextFrom<M>; event: EventFromLogic<M> }, params: ActionParams<M, K>) => void;
};

export interface EngineImplementations<M extends AnyStateMachine> {
  actions: ProvidedActions<M>;
  /** Deadlines in milliseconds under the machine's own delay names; the rest keep their defaults. */
  delays?: Partial<Record<DelayOf<M>, number>>;
}

/**
 * xstate's `machine.provide()` for an engine, checked: every engine action the machine names must be
 * implemented (a missing one is a type error, and at run time an EmbeddingError naming it, instead of a
 * silent no-op that leaves the actor waiting forever), and no unknown one may be given.
 */
export function provideEngine<M extends AnyStateMachine>(machine: M, impl: EngineImplementations<M>): M {
  checkActions(machine, impl.actions, machine.id);
  checkDelays(machine, impl.delays ?? {}, machine.id);
  return machine.provide({ actions: impl.actions, ...(impl.delays ? { delays: impl.delays } : {}) } as never) as M;
}

/** Throws an EmbeddingError naming every engine action `actions` lacks, and any it has that the machine does not name. */
export function checkActions(machine: AnyStateMachine, actions: object, where: string): void {
  const missing = missingEngineActions(machine, actions);
  if (missing.length > 0) throw new EmbeddingError(`${where}: engine action${missing.length > 1 ? 's' : ''} not provided: ${missing.join(', ')} (machine ${machine.id})`);
  const known = new Set(engineActionsOf(machine));
  const unknown = Object.keys(actions).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new EmbeddingError(`${where}: machine ${machine.id} has no engine action ${unknown.join(', ')} (it has: ${[...known].join(', ')})`);
}

/** Throws an EmbeddingError for a delay name the machine does not have (a misspelled deadline would silently keep its default). */
export function checkDelays(machine: AnyStateMachine, delays: object, where: string): void {
  const known = Object.keys(machine.implementations.delays ?? {});
  const unknown = Object.keys(delays).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new EmbeddingError(`${where}: machine ${machine.id} has no delay ${unknown.join(', ')} (it has: ${known.join(', ')})`);
}
