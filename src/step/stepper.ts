import type { AnyMachineSnapshot, AnyStateMachine, EventObject } from 'xstate';

/**
 * One pure machine step, independent of how it is computed: xstate's own `transition()` (the oracle,
 * step/xstate.ts) or plans compiled from the machine definition (step/compiled.ts). Hosts and tools take
 * a Stepper, so the two are interchangeable and can be run in lockstep to check each other.
 */

/** A machine snapshot. Both steppers produce xstate-compatible snapshots (value, context, status, output, matches, hasTag). */
export type Snap = AnyMachineSnapshot;

/** A named engine action the machine asked for, with its resolved params (`{}` when it has none). */
export interface Effect {
  type: string;
  params: Record<string, unknown>;
}

/**
 * A deadline operation: `arm` (re)starts the timer `id` (an armed timer with the same id is replaced),
 * `cancel` stops it. Ids are xstate's (`xstate.after.<delay>.<stateId>`), so they stay stable per state.
 */
export type TimerOp = { op: 'arm'; id: string; event: EventObject; delay: number } | { op: 'cancel'; id: string };

export interface Step {
  snap: Snap;
  /** Engine actions, in the order xstate would execute them (exit, transition, entry). */
  effects: Effect[];
  /** Timer operations, in order. */
  timers: TimerOp[];
}

export interface Stepper {
  /** Human name (for reports). */
  readonly name: string;
  initial(machine: AnyStateMachine, input: unknown): Step;
  /** A step that changes nothing returns the same `snap` object (hosts use identity to skip observation). */
  step(machine: AnyStateMachine, snap: Snap, event: EventObject): Step;
}

export const NO_PARAMS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
