import type { ComposedState, ComposedWorld } from './composed.js';

/**
 * M10, a user's cancel is reported as a cancel: in a prompt run (src/explore/promptRun.ts: no loss, no
 * death, deadlines only when nothing else can happen) whose only faults were user cancels, the side
 * where a user cancelled a request reports it cancelled, or completed when the cancel came too late to
 * matter — never failed: nothing failed, the user asked.
 * M3 asks only for a typed outcome and M7 excuses any failure once a fault happened; this reads which
 * outcome. Ground truth: the faults injected on the run (the world's own choice labels) and the outcomes
 * reported to users. The side the user did not cancel on may report the request failed or cancelled:
 * for it the peer went away, which is neither a success nor its user's choice.
 *
 * And a request no user cancelled completes on both sides: a cancel of one request must not fail
 * another (in composed/handles, before the blockLease remembered a sync notification that came before
 * its release, a generation-side cancel of r1 kept r1's block in quarantine until r2, waiting for it,
 * timed out).
 */

const CANCEL = /^user: cancel (\S+) on the (context|generation) side$/;

/** How a prompt run's fault step is recorded: `cancel <side> <request>`, or `other` for any other fault. */
export function faultRecord(label: string): string {
  const m = CANCEL.exec(label);
  return m ? `cancel ${m[2]} ${m[1]}` : 'other';
}

/** What is wrong with the outcomes at the end of a prompt run whose faults were `faults` (faultRecord's), or []. */
export function wrongOutcome(world: ComposedWorld, s: ComposedState, faults: readonly string[]): string[] {
  if (faults.length === 0 || faults.includes('other')) return [];
  const cancelled = new Set(faults.map((f) => f.slice('cancel '.length)));
  const p: string[] = [];
  for (const r of world.requests) {
    for (const side of ['context', 'generation'] as const) {
      const rep = s.reports[`${side}:${r}`];
      if (!rep) continue; // a missing outcome is M7's
      if (cancelled.has(`${side} ${r}`) && rep.outcome !== 'cancelled' && rep.outcome !== 'completed') p.push(`${r} was cancelled by its user on the ${side} side and ended ${rep.outcome} there`);
      if (!cancelled.has(`context ${r}`) && !cancelled.has(`generation ${r}`) && rep.outcome !== 'completed') p.push(`${r} was cancelled by no user and ended ${rep.outcome} on the ${side} side`);
    }
  }
  return p;
}
