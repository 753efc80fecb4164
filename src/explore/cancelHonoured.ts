import type { RequestAddress } from '../core/wiring.js';
import { parseAddress } from '../core/wiring.js';
import type { ComposedState } from './composed.js';

/**
 * M13, a cancel stops new work, on M7's prompt runs (src/explore/promptRun.ts):
 * - after a user cancels request r on a side, that side starts nothing new for r: the generation side
 *   sends no request info for r (no block of it is advertised to a writer any more), the context side
 *   creates no native transfer of r (no byte of it starts moving);
 * - a cancel made before any native transfer of r existed (no byte of r can have moved, no transfer can
 *   have finished) ends with r reported `cancelled` on that side: "completed" is the answer only to a
 *   cancel that came too late to matter, and nothing was under way yet. M10 already refuses `failed`
 *   after a cancel; this refuses `completed` when the cancel was early.
 * A cancel that is accepted and then ignored (the request goes on and completes, or advertises its
 * blocks afterwards) harms no byte, so M1–M12 accept it; the user who cancelled still waits for, and
 * pays for, a transfer they stopped.
 *
 * Ground truth: the fault steps of the run (their labels), the backend's native transfers (the world
 * never forgets one it created), the control messages on the channel and the outcomes reported.
 */

const CANCEL = /^user: cancel (\S+) on the (context|generation) side$/;

/** Whether the backend has ever held a native transfer of request r (entries are never removed). */
export function transferExists(s: Pick<ComposedState, 'nat'>, r: string): boolean {
  for (const k of Object.keys(s.nat)) if ((parseAddress(k) as RequestAddress).request === r) return true;
  return false;
}

/**
 * The extra fault record of a cancel step (added next to M10's `cancel <side> <request>`), or null:
 * `early <side> <request>` when no native transfer of the request existed when the user cancelled.
 */
export function earlyCancelRecord(s: Pick<ComposedState, 'nat'>, label: string): string | null {
  const m = CANCEL.exec(label);
  if (!m) return null;
  return transferExists(s, m[1]!) ? null : `early ${m[2]} ${m[1]}`;
}

const infos = (q: ComposedState['toCtx'], r: string): number => q.reduce((n, m) => n + (m.t === 'info' && m.id === r ? 1 : 0), 0);

/** New work started on this step for a request its user cancelled before (faults as promptRun records them). */
export function workAfterCancel(before: ComposedState, after: ComposedState, faults: readonly string[]): string | null {
  for (const f of faults) {
    const m = /^cancel (context|generation) (\S+)$/.exec(f);
    if (!m) continue;
    const [, side, r] = m as unknown as [string, 'context' | 'generation', string];
    if (side === 'generation' && infos(after.toCtx, r) > infos(before.toCtx, r)) return `the generation side sent request info for ${r} after its user cancelled ${r} there`;
    if (side === 'context' && Object.keys(after.nat).length > Object.keys(before.nat).length) {
      const fresh = Object.keys(after.nat).filter((k) => !(k in before.nat) && (parseAddress(k) as RequestAddress).request === r);
      if (fresh.length > 0) return `the context side created native transfer ${fresh.join(', ')} after its user cancelled ${r} there`;
    }
  }
  return null;
}

/** At a prompt run's end: a request cancelled early (before any transfer of it existed) that did not end cancelled there. */
export function earlyCancelIgnored(s: Pick<ComposedState, 'reports'>, faults: readonly string[]): string[] {
  const p: string[] = [];
  for (const f of faults) {
    const m = /^early (context|generation) (\S+)$/.exec(f);
    if (!m) continue;
    const rep = s.reports[`${m[1]}:${m[2]}`];
    if (rep && rep.outcome === 'completed') p.push(`${m[2]} was cancelled by its user on the ${m[1]} side before any transfer of it existed, and ended completed there`);
  }
  return p;
}
