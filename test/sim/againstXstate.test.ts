import { afterEach, describe, expect, it, vi } from 'vitest';
import { runSimulate } from '../../src/commands/simulate.js';
import { PureHost } from '../../src/engine/pureHost.js';
import type { TimerOp } from '../../src/step/stepper.js';
import { shapeFor, simulate } from '../../src/sim/vopr.js';

/**
 * The servers as deployed (PureHost: compiled steps in place, one deadline list per delay, the loop's
 * skips, the quiet observer) against the same servers on live xstate actors (ActorHost), seed by seed:
 * the same schedule, outcomes, final virtual time and transition counts. The canaries below are bugs of
 * the deployed host that no invariant of the simulator sees; only the comparison does.
 */

/** PureHost's private step tail, reached for the canaries (a test-local mutation of the deployed host only). */
interface HostInternals {
  apply(rec: unknown, effects: readonly unknown[], timers: readonly TimerOp[]): void;
  endDrain(): void;
  drainNow: number;
}
const internals = PureHost.prototype as unknown as HostInternals;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the deployed host against live xstate actors, under the simulator', () => {
  it('seeds 1..24: no divergence, no violation, over both loops, crashes and every outcome', async () => {
    const r = await runSimulate({ from: 1, to: 24, steps: 2000, variants: [], checkDeterminism: false, againstXstate: true });
    expect(r.violations).toEqual([]);
    expect(r.divergedFromXstate).toEqual([]);
    expect(new Set(Array.from({ length: 24 }, (_, i) => shapeFor(i + 1).loop))).toEqual(new Set(['auto', 'manual']));
  }, 120_000);

  it('a run on live actors is a run of the same world: its own digest equals the deployed one, its counts too', async () => {
    const pure = await simulate({ seed: 4, steps: 2000 });
    const live = await simulate({ seed: 4, steps: 2000, host: 'actors' });
    expect(live.digest).toBe(pure.digest);
    expect(live.transitions).toEqual(pure.transitions);
    // Requests ran to an end on both (the comparison is not of two idle worlds).
    expect(pure.requests.completed).toBeGreaterThan(0);
  }, 60_000);

  it('canary: deadlines the deployed host arms 1 ms late break no invariant, and the comparison finds them', async () => {
    const apply = internals.apply;
    vi.spyOn(internals, 'apply').mockImplementation(function (this: HostInternals, rec, effects, timers) {
      const late = timers.map((t) => (t.op === 'arm' ? { ...t, delay: t.delay + 1 } : t));
      apply.call(this, rec, effects, late);
    });
    const r = await runSimulate({ from: 1, to: 12, steps: 2000, variants: [], checkDeterminism: false, againstXstate: true });
    expect(r.violations).toEqual([]);
    expect(r.divergedFromXstate.length).toBeGreaterThan(0);
    // Each is placed at a step, with both worlds as they were after it.
    for (const d of r.divergedFromXstate) expect(d.what).toMatch(/^after step \d+, compiled: .* xstate: /);
  }, 120_000);

  it('canary: a run to completion that reads a stale clock (deadlines counted from an earlier instant) breaks no invariant, and the comparison finds it', async () => {
    const endDrain = internals.endDrain;
    vi.spyOn(internals, 'endDrain').mockImplementation(function (this: HostInternals) {
      const stale = this.drainNow;
      endDrain.call(this);
      this.drainNow = stale;
    });
    const r = await runSimulate({ from: 1, to: 12, steps: 2000, variants: [], checkDeterminism: false, againstXstate: true });
    expect(r.violations).toEqual([]);
    expect(r.divergedFromXstate.length).toBeGreaterThan(3);
  }, 120_000);
});
