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
 * Not asked (measured: the shipped machines break it): that a request no user cancelled still completes.
 * In composed/handles a generation-side cancel of r1 lets r1's sync notification arrive before r1's lease
 * is released; the late proof is dropped, the lease waits out quarantineMaxAge, and r2, waiting for the
 * one block, times out (docs/invariants.md, "Mutation score").
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
    }
  }
  return p;
}
