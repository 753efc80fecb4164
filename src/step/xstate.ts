import { createEmptyActor } from 'xstate';
import type { AnyStateMachine, EventObject } from 'xstate';
import type { Effect, Snap, Step, Stepper, TimerOp } from './stepper.js';
import { NO_PARAMS } from './stepper.js';

/**
 * The oracle: xstate's own macrostep (`machine.transition` / `getInitialSnapshot`) with one reused inert
 * actor scope whose executor only collects actions (what xstate's pure `transition()` does, without
 * building a throw-away actor per call). Built-in actions become timer operations; every other action
 * is an engine effect.
 */
const collected: Array<{ type: string; params?: unknown }> = [];
const inertScope = (() => {
  const self = createEmptyActor();
  return {
    self,
    defer: () => {},
    id: '',
    logger: () => {},
    sessionId: '',
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (a: { type: string; params?: unknown }) => void collected.push(a),
  };
})();

/** Split xstate's executable actions into engine effects and timer operations. */
export function splitActions(actions: ReadonlyArray<{ type: string; params?: unknown }>): { effects: Effect[]; timers: TimerOp[] } {
  const effects: Effect[] = [];
  const timers: TimerOp[] = [];
  for (const a of actions) {
    if (a.type === 'xstate.raise') {
      const p = a.params as { event: EventObject; id: string; delay?: number };
      // An immediate raise is consumed inside the macrostep; only delayed ones are deadlines.
      if (typeof p.delay === 'number') timers.push({ op: 'arm', id: p.id, event: p.event, delay: p.delay });
    } else if (a.type === 'xstate.cancel') {
      timers.push({ op: 'cancel', id: (a.params as { sendId: string }).sendId });
    } else if (!a.type.startsWith('xstate.')) {
      effects.push({ type: a.type, params: (a.params ?? NO_PARAMS) as Record<string, unknown> });
    }
  }
  return { effects, timers };
}

/** xstate's step with the raw executable actions it produced (for tools that forward them, e.g. a recording wrapper). */
export function transitionWithActions(machine: AnyStateMachine, snap: Snap, event: EventObject): [Snap, Array<{ type: string; params?: unknown }>] {
  collected.length = 0;
  const next = machine.transition(snap, event, inertScope as never) as Snap;
  return [next, collected.splice(0)];
}

export function initialWithActions(machine: AnyStateMachine, input: unknown): [Snap, Array<{ type: string; params?: unknown }>] {
  collected.length = 0;
  const snap = machine.getInitialSnapshot(inertScope as never, input as never) as Snap;
  return [snap, collected.splice(0)];
}

export class XstateStepper implements Stepper {
  readonly name = 'xstate';

  initial(machine: AnyStateMachine, input: unknown): Step {
    const [snap, actions] = initialWithActions(machine, input);
    return { snap, ...splitActions(actions) };
  }

  step(machine: AnyStateMachine, snap: Snap, event: EventObject): Step {
    const [next, actions] = transitionWithActions(machine, snap, event);
    return { snap: next, ...splitActions(actions) };
  }
}

export const xstateStepper = new XstateStepper();
