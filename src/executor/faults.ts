import type { Side } from '../core/wiring.js';
import type { FaultName } from './config.js';

/**
 * The burst's seeded faults, in one place (madsim's buggify): each is a point in the interpreter where a
 * stimulus is dropped, delayed or duplicated, or a user cancel is issued — things the world does, never
 * a decision of the protocol. The simulator injects its faults from outside instead (its network, its
 * scheduler) and gives requests no faults.
 */
export class FaultPoints {
  constructor(
    readonly side: Side,
    private readonly faultsOf: (request: string) => readonly FaultName[],
  ) {}

  has(request: string, fault: FaultName): boolean {
    const f = this.faultsOf(request);
    return f.length > 0 && f.includes(fault);
  }
}
