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

  /** Times each fault point answered yes (the server's stats carry it: a burst shows its faults acted). */
  readonly fired: Partial<Record<FaultName, number>> = {};

  /**
   * Whether any request submitted to this server carried a fault: until one did, no fault point looks
   * anything up (a server without faults, such as the bench's, pays nothing for them). A flag that only
   * goes up, rather than a count of live faulty requests, so no pairing of start and end can undercount.
   */
  private armed = false;

  /** A request with these faults was submitted. */
  submitted(faults: readonly FaultName[]): void {
    if (faults.length > 0) this.armed = true;
  }

  has(request: string, fault: FaultName): boolean {
    if (!this.armed) return false;
    const f = this.faultsOf(request);
    if (f.length === 0 || !f.includes(fault)) return false;
    this.fired[fault] = (this.fired[fault] ?? 0) + 1;
    return true;
  }
}
