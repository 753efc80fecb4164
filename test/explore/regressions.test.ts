import { describe, expect, it } from 'vitest';
import { REGRESSION_VARIANTS } from '../../machines/index.js';
import { expectedViolations, SCENARIOS, scenarioFor, VARIANT_PLAN } from '../../src/explore/catalog.js';
import { exploreCombination } from '../../src/explore/explorer.js';
import type { ExploreResult } from '../../src/explore/explorer.js';
import { checkEdge, checkState } from '../../src/explore/invariants.js';
import { LiveWorld } from '../../src/explore/replay.js';
import { initialWorld, step } from '../../src/explore/world.js';
import type { WorldState } from '../../src/explore/world.js';

/**
 * Each known bug, as a regression variant of a production machine, must be caught: the explorer finds
 * a counterexample breaking the invariant the bug breaks, the counterexample replays on live actors to
 * the same violation, and the shipped machines in the same scenario are free of it.
 */
const TITLES: Record<string, string> = {
  v1: 'v1 broken promise',
  v2: 'v2 early ready',
  queuedErase: 'queued-erase broken promise',
  refusedCancelLoopNoDeadline: 'refused cancel without deadlines',
  freeOnCancel: 'free-on-cancel',
  notArrivedAsSuccess: 'not-arrived-as-success',
  terminalOverwrite: 'terminal overwrite',
  notReadySlotLeak: 'not-ready slot leak',
  releaseIsQuiescence: 'release taken as quiescence',
  freeOnTerminal: 'free on terminal before quiescence',
  workerSetsState: 'worker thread sets request state',
};

const shippedCache = new Map<string, ExploreResult>();
const shipped = (scenario: string) => {
  if (!shippedCache.has(scenario)) shippedCache.set(scenario, exploreCombination({ scenario, variant: 'shipped' }));
  return shippedCache.get(scenario)!;
};

describe('the shipped machines violate nothing (S1–S10, L1–L5) in any scenario', () => {
  it.each(Object.keys(SCENARIOS))('%s', (scenario) => {
    expect(shipped(scenario).violations).toEqual([]);
  }, 300_000);
});

it('every regression variant has a plan and a title', () => {
  expect(REGRESSION_VARIANTS.filter((v) => !v.composed).map((v) => v.name).sort()).toEqual(Object.keys(VARIANT_PLAN).sort());
  expect(Object.keys(TITLES).sort()).toEqual(Object.keys(VARIANT_PLAN).sort());
});

for (const variant of REGRESSION_VARIANTS.filter((v) => !v.composed)) {
  const plan = VARIANT_PLAN[variant.name]!;
  describe(`${TITLES[variant.name]} (${variant.name}, ${variant.bugClass})`, () => {
    for (const scenario of plan.scenarios) {
      for (const invariant of expectedViolations(variant.name, scenario)) {
        it(`${scenario}: the explorer finds a ${invariant} counterexample; the shipped machines have none`, () => {
          const r = exploreCombination({ scenario, variant: variant.name });
          const v = r.violations.find((x) => x.invariant === invariant);
          expect(v, `${invariant} among ${r.violations.map((x) => x.invariant).join(',')}`).toBeDefined();
          expect(shipped(scenario).violations.filter((x) => x.invariant === invariant)).toEqual([]);

          // Safety counterexamples replay on live actors to the same violation.
          if (!invariant.startsWith('S')) return;
          const sc = scenarioFor({ scenario, variant: variant.name });
          const live = new LiveWorld(sc);
          let pure: WorldState = initialWorld(sc);
          const seen = new Set<string>();
          for (const label of v!.path) {
            const before = live.state;
            live.apply(label, pure);
            pure = step(sc, pure, label);
            const now = { ...live.state, last: pure.last };
            for (const x of [...checkState(sc, now), ...checkEdge(sc, before, now)]) seen.add(x.name);
          }
          live.stop();
          expect([...seen]).toContain(invariant);
        }, 300_000);
      }
    }
  });
}
