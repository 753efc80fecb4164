import { describe, expect, it } from 'vitest';
import { productionMachines, mutantNamed } from '../../src/mutate/catalog.js';
import type { Baseline, ScenarioOutcome } from '../../src/mutate/explore.js';
import { ComposedWorld } from '../../src/explore/composed.js';
import { computeBaseline, exploreMutant, scenarioSetup, withMachine } from '../../src/mutate/explore.js';
import { COMPOSED_SCENARIOS } from '../../src/explore/composedCatalog.js';
import { DEEP_BOUNDS, MUTATION_FOOTINGS, mutationTarget, mutationTargets } from '../../src/mutate/footings.js';
import { replayComposed } from '../../src/explore/composedExplorer.js';
import { classify, runMutantTask, runMutate } from '../../src/mutate/run.js';

/**
 * `mutate --shipped-states <n>`: a deeper kill search in the shipped scenarios. It may find a kill the
 * shipped budget misses; it must never let a mutant pass for equivalent that the shipped search sees
 * differ (Baseline.shallowSteps).
 */
const scenario = 'composed/handles';
const caps = { maxMs: 300_000 };
const byName = mutantNamed;
const footing = MUTATION_FOOTINGS[0]!.name;

describe('deeper kill search in the shipped scenarios', { timeout: 300_000 }, () => {
  it('raises only the shipped scenarios’ budget, never below the shipped one; footings keep their cap', () => {
    const shipped = mutationTarget(scenario).maxStates;
    expect(scenarioSetup(scenario, { shippedStates: 50_000 }).maxStates).toBe(50_000);
    expect(scenarioSetup(scenario, { shippedStates: 10 }).maxStates).toBe(shipped);
    expect(scenarioSetup(scenario).maxStates).toBe(shipped);
    expect(scenarioSetup(footing, { shippedStates: 10_000_000 }).maxStates).toBe(mutationTarget(footing).maxStates);
  });

  it('--deep-bounds adds each shipped scenario at its --deep bounds, kills only, at the shipped budget', () => {
    expect(mutationTargets().map((t) => t.name)).not.toContain(`${scenario}${DEEP_BOUNDS}`);
    const deep = mutationTargets({ deepBounds: true }).filter((t) => t.name.endsWith(DEEP_BOUNDS));
    expect(deep.map((t) => t.name).sort()).toEqual(Object.keys(COMPOSED_SCENARIOS).map((n) => `${n}${DEEP_BOUNDS}`).sort());
    for (const t of deep) {
      const sc = COMPOSED_SCENARIOS[t.name.slice(0, -DEEP_BOUNDS.length)]!;
      expect(t).toMatchObject({ decides: false, bounds: sc.deepBounds, maxStates: sc.maxStates, backend: sc.backend });
      expect(scenarioSetup(t.name).cfg.bounds).toEqual(sc.deepBounds);
    }
  });

  it('refuses a budget below the shipped one (a smaller search could hide a difference)', async () => {
    await expect(runMutate({ only: [], shippedStates: 100, workers: 0 })).rejects.toThrow(/--shipped-states must be an integer of at least 6000/);
  });

  const base: Baseline = computeBaseline(scenario, { walks: 0 });

  it('a mutant alike in the deeper search but not at the shipped budget is never alike, so never equivalent', () => {
    // countSettled dropped: a different step within the shipped budget of composed/handles, in a field
    // a guard reads (so not alike modulo write-only context either; recordProof, used here before, is).
    const m = byName('contextSend: drop action countSettled in sender.sending TRANSFERS_SETTLED[1]');
    // A deeper record in which the mutant takes every step alike (none recorded), over the shipped one.
    const deeper = { ...base, steps: { machines: {} }, shallowSteps: base.steps };
    const r = exploreMutant(m.build(), deeper, caps);
    expect(r).toMatchObject({ kind: 'clean', same: false, unexplored: true });
    const sameFooting: ScenarioOutcome = { scenario: footing, kind: 'clean', same: true, truncated: false, states: 10, edges: 20, ms: 0 };
    const bases = [
      { scenario: footing, truncated: false, decides: true },
      { scenario, truncated: true, decides: false },
    ];
    expect(classify(m, [sameFooting, r], bases, 0)).toMatchObject({ verdict: 'survived', why: expect.stringMatching(/^undecided: .*differs only in composed\/handles/) });
    // The same record without the shipped one: alike, and equivalent — the guard is what keeps it out.
    const unguarded = exploreMutant(m.build(), { ...base, steps: { machines: {} } }, caps);
    expect(unguarded).toMatchObject({ kind: 'clean', same: true });
    expect(classify(m, [sameFooting, unguarded], bases, 0).verdict).toBe('equivalent');
  });

  it('a deeper baseline keeps the shipped steps and its budget, and the original is alike in both', () => {
    const deep = computeBaseline(scenario, { walks: 0, shippedStates: base.states + 500 });
    expect(deep).toMatchObject({ maxStates: base.states + 500, states: base.states + 500, truncated: true, violations: [] });
    expect(deep.shallowSteps).toBeDefined();
    expect(base.shallowSteps).toBeUndefined();
    const lease = productionMachines().find((x) => x.id === 'blockLease')!;
    expect(exploreMutant(lease, deep, caps)).toMatchObject({ kind: 'clean', same: true, states: base.states + 500 });
  });

  it('a mutant that survives on a footing skips the other footings but is still searched in the shipped scenarios, where it can be killed', () => {
    // Observably different on footing/1x1-shm (a cancel in flight skips draining, and nothing there
    // breaks); in composed/handles, with two handles, a generation block ends retired for nothing (M7).
    // (Until the lifecycle said whether its side started, admission's grantHead dropped was this
    // example; it is now killed on the footing: no WITHDRAW clears the request it keeps granting.)
    const name = 'transferHandle: retarget inProgress CANCEL draining → releasing';
    const shm = computeBaseline(footing);
    // A later footing: skipped once the mutant is known to survive (its record is never read).
    const later = { ...shm, scenario: 'footing/1x1-ucx' };
    const out = runMutantTask({ name, allTargets: false, baselines: [shm, later, base], caps, thorough: false });
    expect(out.map((o) => o.scenario)).toEqual([footing, scenario]);
    expect(out[0]).toMatchObject({ kind: 'clean', same: false, bisimilar: false, truncated: false });
    expect(out[1]).toMatchObject({ kind: 'killed', invariant: 'M7', invariantKind: 'consequence' });
    expect(classify(byName(name), out, [shm, later, base], 0)).toMatchObject({ verdict: 'killed', why: expect.stringMatching(/^M7 \(consequence\) in composed\/handles/) });
  });

  it('the kill-only place with a cancel and a duplicate kills a session that forgets an ended request (M7/M4: the info is kept for ever), and the path replays', () => {
    const place = 'kill/cancel-duplicate-shm';
    expect(mutationTargets().map((t) => t.name)).not.toContain(place);
    expect(mutationTargets({ deepBounds: true }).find((t) => t.name === place)).toMatchObject({ decides: false });
    const b = computeBaseline(place);
    expect(b).toMatchObject({ decides: false, violations: [] });
    const m = byName('peerSession: drop action retireUnstarted in open REQUEST_ENDED[2]');
    const r = exploreMutant(m.build(), b, caps);
    // M7 (its prompt search runs first) or M4: either way, the run ends with the info kept.
    expect(r).toMatchObject({ kind: 'killed', invariant: expect.stringMatching(/^M[47]$/), invariantKind: 'consequence' });
    if (r.kind !== 'killed') return;
    expect(r.message).toMatch(/peerSession keeps early info for r1/);
    expect(r.path).toContain('user: cancel r1 on the context side');
    // The path replays with the mutant to a world at rest that keeps the info, and not with the original.
    const cfg = scenarioSetup(place).cfg;
    const mutated = replayComposed(withMachine(cfg, m.build()), r.path);
    expect(mutated.stuckAt).toBeNull();
    expect(new ComposedWorld(withMachine(cfg, m.build())).restProblems(mutated.state, true)).toContain('peerSession keeps early info for r1');
    const original = replayComposed(cfg, r.path);
    expect(original.stuckAt === null ? new ComposedWorld(cfg).restProblems(original.state, true) : []).not.toContain('peerSession keeps early info for r1');
  });
});
