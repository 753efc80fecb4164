import type { RequestAddress } from '../core/wiring.js';
import { parseAddress } from '../core/wiring.js';
import type { ComposedState } from './composed.js';

/**
 * M8, a reported success is true, read from ground truth at the step that reports it: the context side
 * reports a request completed only when every one of its transfer handles' native transfers finished
 * DONE (the backend's word, not the machine's). M3 asks that each future settles once with a typed
 * outcome; this asks that a success is not a lie. The generation side's success is M2's: what it serves
 * to decode holds its own bytes (its report comes after decoding, when the lease may already be freed).
 */
export function falseSuccess(before: ComposedState, after: ComposedState, handlesPerRequest: number): string | null {
  for (const [k, rep] of Object.entries(after.reports)) {
    if (rep.outcome !== 'completed' || before.reports[k]) continue;
    const i = k.indexOf(':');
    const side = k.slice(0, i);
    const r = k.slice(i + 1);
    if (side !== 'context') continue;
    const phases = Object.entries(after.nat)
      .filter(([h]) => (parseAddress(h) as RequestAddress).request === r)
      .map(([, x]) => x.phase);
    if (phases.length < handlesPerRequest || phases.some((p) => p !== 'done')) {
      return `context reports ${r} completed, but its transfers are ${phases.length === 0 ? 'none' : phases.join(', ')} (${handlesPerRequest} expected DONE)`;
    }
  }
  return null;
}
