import type { AnyStateMachine, EventObject } from 'xstate';
import type { CompileOptions } from './compile.js';
import { CompiledMachine } from './compile.js';
import type { Snap, Step, Stepper } from './stepper.js';

/**
 * The compiled stepper: each machine is compiled once (on first use, or ahead with `compile()`) into
 * plans per state configuration and event, then stepped by running those plans. Same snapshots, effects
 * and timer operations as the xstate stepper — checked on every explored edge by test/step/oracle.test.ts.
 */
export class CompiledStepper implements Stepper {
  readonly name = 'compiled';
  private readonly cache = new WeakMap<AnyStateMachine, CompiledMachine>();

  constructor(private readonly opts: CompileOptions = {}) {}

  /** Compile now (throws UnsupportedMachineError naming the feature it refuses). */
  compile(machine: AnyStateMachine): CompiledMachine {
    let c = this.cache.get(machine);
    if (!c) {
      c = new CompiledMachine(machine, this.opts);
      this.cache.set(machine, c);
    }
    return c;
  }

  initial(machine: AnyStateMachine, input: unknown): Step {
    return this.compile(machine).initial(input);
  }

  step(machine: AnyStateMachine, snap: Snap, event: EventObject): Step {
    return this.compile(machine).step(snap, event);
  }
}

export const compiledStepper = new CompiledStepper();
