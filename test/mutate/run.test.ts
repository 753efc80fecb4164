import { describe, expect, it } from 'vitest';
import { blockLeaseMachine } from '../../machines/index.js';
import { allMutants, productionMachines } from '../../src/mutate/catalog.js';
import type { Baseline } from '../../src/mutate/explore.js';
import { computeBaseline, exploreMutant, machineIdsOf, mutationScenarios, shippedScenario, siteNeverActs } from '../../src/mutate/explore.js';
import { classify, sampleOrder } from '../../src/mutate/run.js';
import { SURVIVOR_REASONS } from '../../src/mutate/survivors.js';

/** The cheapest scenario that runs blockLease today (any one will do if the catalog changes). */
const scenario = (() => {
  const running = mutationScenarios().filter((s) => machineIdsOf(shippedScenario(s)).includes('blockLease'));
  return running.includes('handleRelease/shm') ? 'handleRelease/shm' : running[0]!;
})();

const caps = { maxStates: 200_000, maxMs: 120_000 };
const byName = (name: string) => {
  const m = allMutants({ machine: 'blockLease' }).find((x) => x.name === name);
  if (!m) throw new Error(`no mutant ${name}`);
  return m;
};

describe('mutation runner', () => {
  const base: Baseline = computeBaseline(scenario);

  it('finds every production machine, and only those', () => {
    expect(productionMachines().map((m) => m.id)).toEqual(expect.arrayContaining(['blockLease', 'contextSend', 'generationReceive', 'requestLifecycle', 'transferHandle']));
    expect(productionMachines().some((m) => m.id.includes('.'))).toBe(false);
  });

  it('kills a known-bad mutant: reuse of exposed blocks without proof of quiescence', () => {
    const m = byName('blockLease: drop guard hasQuiescenceProof in exposed RELEASE[0]');
    const r = exploreMutant(m.build(), base, caps);
    expect(r.kind).toBe('killed');
    expect(r.kind === 'killed' && r.invariant).toBe('S5');
    expect(classify(m, [r], [base], 0).verdict).toBe('killed');
  });

  it('kills a dropped deadline on the definition alone (L1), without exploring', () => {
    const r = exploreMutant(byName('blockLease: drop deadline quarantineMaxAge in quarantined').build(), base, caps);
    expect(r).toMatchObject({ kind: 'killed', invariant: 'L1', states: 0 });
  });

  it('classifies a no-op mutant (a metric nobody routes) as equivalent, and the production machine too', () => {
    const m = byName('blockLease: drop action quarantineEntered in exposed RELEASE[1]');
    const r = exploreMutant(m.build(), base, caps);
    expect(r).toMatchObject({ kind: 'clean', same: true });
    expect(classify(m, [r], [base], 0).verdict).toBe('equivalent');
    expect(exploreMutant(blockLeaseMachine, base, caps)).toMatchObject({ kind: 'clean', same: true, states: base.states });
  });

  it('tells a changed but clean graph from an identical one', () => {
    // Skipping `allocated` changes the explored worlds; no invariant objects.
    const m = byName('blockLease: retarget free ALLOCATE allocated → exposed');
    const r = exploreMutant(m.build(), base, caps);
    expect(r).toMatchObject({ kind: 'clean', same: false });
    const c = classify(m, [r], [base], 0);
    expect(c.verdict).toBe('survived');
    expect(c.why).toBe(SURVIVOR_REASONS[m.name] ?? 'no reason recorded');
  });

  it('computes a reason for a survivor whose state the scenarios never reach', () => {
    const m = byName('blockLease: drop action retireBlocks in fencing after fenceTimeout');
    const unreached = { ...base, reached: base.reached.filter((k) => k !== 'blockLease|fencing') };
    const c = classify(m, [{ scenario: scenario, kind: 'clean', same: false, states: 1, edges: 0, ms: 0 }], [unreached], 0);
    expect(c).toMatchObject({ verdict: 'survived', computed: true });
    expect(c.why).toMatch(/fencing is never active/);
  });

  it('stops an exploration at the state cap as undecided, never as a kill', () => {
    const r = exploreMutant(byName('blockLease: retarget free ALLOCATE allocated → exposed').build(), base, { maxStates: 3, maxMs: 60_000 });
    expect(r.kind).toBe('cap');
    expect(classify(byName('blockLease: retarget free ALLOCATE allocated → exposed'), [r], [base], 0).why).toMatch(/^undecided/);
  });

  it('skips exploring only mutants whose site never acts, and their graphs really are the original\'s', () => {
    // The skip rule is an argument, not a measurement: check it on every mutant of the scenario's machines.
    const small = computeBaseline(scenario);
    const machines = new Set(small.machines);
    let skipped = 0;
    for (const m of allMutants().filter((x) => machines.has(x.machineId))) {
      const original = productionMachines().find((x) => x.id === m.machineId)!;
      if (!siteNeverActs(original, m.site, m.operator, small)) continue;
      skipped++;
      const full = exploreMutant(m.build(), small, caps);
      const quick = exploreMutant(m.build(), small, caps, true);
      expect({ kind: full.kind, same: full.kind === 'clean' && full.same }, m.name).toEqual({ kind: quick.kind, same: quick.kind === 'clean' && quick.same });
    }
    expect(skipped).toBeGreaterThan(0);
  });

  it('orders mutants so that a budget-cut prefix samples the whole list', () => {
    const order = sampleOrder(272);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 272 }, (_, i) => i));
    // The first 40 reach every eighth of the list (a plain prefix would stay in the first).
    const eighths = new Set(order.slice(0, 40).map((i) => Math.floor((i * 8) / 272)));
    expect(eighths.size).toBe(8);
  });

  it('every annotated survivor names a mutant that exists', () => {
    const names = new Set(allMutants({ allTargets: true }).map((m) => m.name));
    expect(Object.keys(SURVIVOR_REASONS).filter((n) => !names.has(n))).toEqual([]);
  });
});
