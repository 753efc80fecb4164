import { createMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import { exploreComposed } from '../../src/explore/composedExplorer.js';
import { allMutants, productionMachines, mutantNamed } from '../../src/mutate/catalog.js';
import type { Baseline, ScenarioOutcome } from '../../src/mutate/explore.js';
import { GraphDigest, computeBaseline, exploreMutant, machineIdsOf, mutationScenarios, scenarioSetup, withMachine } from '../../src/mutate/explore.js';
import { classify, sampleOrder } from '../../src/mutate/run.js';
import { SURVIVOR_REASONS } from '../../src/mutate/survivors.js';

/** A shipped composed scenario (cut at its budget: kills only), breadth-first only to keep the tests quick. */
const scenario = 'composed/handles';
const caps = { maxMs: 300_000 };
const byName = mutantNamed;
/** A graph digest of the first `max` worlds of `scenario` with these machines. */
const digestOf = (machines: ReturnType<typeof scenarioSetup>['cfg'], max: number) => {
  const d = new GraphDigest();
  const r = exploreComposed(machines, { scenario, variant: 'x' }, { maxStates: max, hooks: d.hooks });
  return { digest: d.digest(), states: r.states, edges: r.edges };
};

// Explorations of a few thousand composed worlds take seconds on a loaded machine.
describe('mutation runner (composed scenarios)', { timeout: 300_000 }, () => {
  const base: Baseline = computeBaseline(scenario, { walks: 0 });

  it('mutates every production machine, including admission, fenceClient and peerSession, and every one runs in a composed scenario', () => {
    const ids = productionMachines().map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['admission', 'blockLease', 'contextSend', 'fenceClient', 'generationReceive', 'peerSession', 'requestLifecycle', 'transferHandle']));
    expect(productionMachines().some((m) => m.id.includes('.'))).toBe(false);
    const explored = new Set(mutationScenarios().flatMap((s) => machineIdsOf(scenarioSetup(s).cfg)));
    expect(ids.filter((id) => !explored.has(id))).toEqual([]);
    expect(base.machines).toEqual(expect.arrayContaining(ids));
  });

  it('swaps the mutant in on every side and role that runs its machine id', () => {
    const cfg = scenarioSetup(scenario).cfg;
    const mutant = byName('requestLifecycle: drop deadline kvTransferTimeout in DISAGG_GENERATION_INIT').build();
    const swapped = withMachine(cfg, mutant);
    expect(swapped.machines.context.lifecycle).toBe(mutant);
    expect(swapped.machines.generation.lifecycle).toBe(mutant);
    // admission runs in two roles on the generation side (admission and receive slots).
    const adm = byName('admission: drop action enqueue in serving WANT').build();
    const a = withMachine(cfg, adm);
    expect([a.machines.context.admission, a.machines.generation.admission, a.machines.generation.slots]).toEqual([adm, adm, adm]);
    expect(a.machines.context.send).toBe(cfg.machines.context.send);
  });

  it('the digest hooks leave the search as it was, and the digest tells graphs apart by content', () => {
    const cfg = scenarioSetup(scenario).cfg;
    const plain = exploreComposed(cfg, { scenario, variant: 'x' }, { maxStates: 400 });
    const a = digestOf(cfg, 400);
    expect({ states: a.states, edges: a.edges }).toEqual({ states: plain.states, edges: plain.edges });
    // The production machine rebuilt from its own config (what every mutant is): the same graph.
    const lease = productionMachines().find((m) => m.id === 'blockLease')!;
    const rebuilt = createMachine(lease.config as never, lease.implementations as never);
    expect(digestOf(withMachine(cfg, rebuilt), 400).digest).toBe(a.digest);
    // A mutant that acts within the first worlds: a different digest.
    const changed = byName('admission: drop action enqueue in serving WANT').build();
    expect(digestOf(withMachine(cfg, changed), 400).digest).not.toBe(a.digest);
  });

  it('kills a mutant with a consequence invariant and names the invariant, its kind and a path', () => {
    const m = byName('transferHandle: drop action postTransfer in prepared POST');
    const r = exploreMutant(m.build(), base, caps);
    expect(r).toMatchObject({ kind: 'killed', invariantKind: 'consequence' });
    expect(r.kind === 'killed' && r.invariant).toMatch(/^(M\d+|L2)$/);
    expect(r.kind === 'killed' && r.path.length).toBeGreaterThan(0);
    const c = classify(m, [r], [base], 0);
    expect(c).toMatchObject({ verdict: 'killed', kind: 'consequence' });
  });

  it('kills a dropped deadline on the definition alone (L1, a design rule), without exploring', () => {
    const r = exploreMutant(byName('blockLease: drop deadline quarantineMaxAge in quarantined').build(), base, caps);
    expect(r).toMatchObject({ kind: 'killed', invariant: 'L1', invariantKind: 'design-rule', states: 0 });
  });

  it('the original machine itself explores clean with the baseline digest, and a truncated clean graph is never equivalent', () => {
    const lease = productionMachines().find((m) => m.id === 'blockLease')!;
    const r = exploreMutant(lease, base, caps);
    expect(r).toMatchObject({ kind: 'clean', same: true, truncated: base.truncated, states: base.states });
    const m = byName('blockLease: drop action recordProof in exposed RELEASE[0]');
    const c = classify(m, [r], [base], 0);
    // A shipped scenario is cut at its budget and only searched for kills: it never decides equivalence.
    expect(base).toMatchObject({ truncated: true, decides: false });
    expect(c.verdict).toBe('survived');
    expect(c.why).toMatch(/^undecided/);
  });

  it('is equivalent only when every exploration is complete and identical; complete but different survives', () => {
    const m = byName('blockLease: drop action recordProof in exposed RELEASE[0]');
    const complete = { scenario, truncated: false };
    const same: ScenarioOutcome = { scenario, kind: 'clean', same: true, truncated: false, states: 10, edges: 20, ms: 0 };
    expect(classify(m, [same], [complete], 0).verdict).toBe('equivalent');
    expect(classify(m, [{ ...same, truncated: true }], [complete], 0)).toMatchObject({ verdict: 'survived', why: expect.stringMatching(/^undecided: truncated/) });
    expect(classify(m, [same], [{ scenario, truncated: true }], 0).verdict).toBe('survived');
    expect(classify(m, [{ ...same, same: false }], [complete], 0).verdict).toBe('survived');
    const crash: ScenarioOutcome = { scenario, kind: 'crash', message: 'actor already exists', states: 3, ms: 0 };
    expect(classify(m, [crash], [complete], 0).verdict).toBe('killed (crash)');
  });

  it('stops an exploration at the time cap as undecided, never as a kill', () => {
    const m = byName('contextSend: remove branch lastAllSucceeded in sender.sending TRANSFERS_SETTLED[0]');
    const r = exploreMutant(m.build(), base, { maxMs: 0 });
    expect(r.kind).toBe('cap');
    expect(classify(m, [r], [base], 0)).toMatchObject({ verdict: 'survived', why: expect.stringMatching(/^undecided: exploration abandoned/) });
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
