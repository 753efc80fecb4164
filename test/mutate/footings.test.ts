import { createMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import { ComposedWorld } from '../../src/explore/composed.js';
import { exploreComposed, replayComposed } from '../../src/explore/composedExplorer.js';
import { FULL_GRAPH, Interner, bisimilar, observedGraph, observedLabel } from '../../src/mutate/bisim.js';
import type { ObservedGraph } from '../../src/mutate/bisim.js';
import { productionMachines, mutantNamed } from '../../src/mutate/catalog.js';
import type { Baseline, ScenarioOutcome } from '../../src/mutate/explore.js';
import { GraphDigest, computeBaseline, exploreMutant, scenarioSetup, withMachine } from '../../src/mutate/explore.js';
import { MUTATION_FOOTINGS, mutationTargets } from '../../src/mutate/footings.js';
import { classify } from '../../src/mutate/run.js';
import { firstDifference, guarded } from '../../src/mutate/steps.js';
import { pureTransition } from '../../src/explore/world.js';

/**
 * The mutation footings (small composed worlds explored completely), the step check that proves a
 * mutant's graph identical without exploring it, and the bisimulation that judges a different graph.
 * Only the smallest footing is explored here (one request, one handle, no fault: ~17,000 worlds).
 */
const footing = 'footing/1x1-shm';
const byName = mutantNamed;
const caps = { maxMs: 600_000 };

describe('mutation footings', { timeout: 600_000 }, () => {
  const base: Baseline = computeBaseline(footing);

  it('lists complete footings first, each with its bounds, then the shipped scenarios that only search for kills', () => {
    const t = mutationTargets();
    expect(t.filter((x) => x.decides).map((x) => x.name)).toEqual(MUTATION_FOOTINGS.map((f) => f.name));
    expect(t.filter((x) => !x.decides).map((x) => x.name)).toEqual(['composed/reuse', 'composed/handles']);
    // Every fault kind is the single fault of some footing.
    for (const k of ['cancels', 'reorder', 'losses', 'peerDeath'] as const) expect(MUTATION_FOOTINGS.some((f) => f.bounds[k] === 1 && f.bounds.requests === 1), k).toBe(true);
    expect(base).toMatchObject({ decides: true, truncated: false, violations: [] });
  });

  it('the recording machines leave the exploration as it was, and every production machine answers its own record alike', () => {
    // Footings are explored as full transition systems (no reduction, no symmetry).
    const plain = new GraphDigest();
    exploreComposed(scenarioSetup(footing).cfg, { scenario: footing, variant: 'x' }, { ...FULL_GRAPH, hooks: plain.hooks });
    expect(plain.digest()).toBe(base.digest);
    for (const m of productionMachines()) expect(firstDifference(m, base.steps), m.id).toBeNull();
    // Rebuilt from its own config (what every mutant is): alike too.
    const lease = productionMachines().find((m) => m.id === 'blockLease')!;
    expect(firstDifference(createMachine(lease.config as never, lease.implementations as never) as never, base.steps)).toBeNull();
    expect(Object.keys(base.steps.machines).sort()).toEqual(productionMachines().map((m) => m.id).sort());
  });

  it('a mutant that takes a step differently is found, and explored', () => {
    const m = byName('transferHandle: drop action postTransfer in prepared POST');
    expect(firstDifference(m.build(), base.steps)).toMatch(/on POST/);
    const r = exploreMutant(m.build(), base, caps);
    expect(r).toMatchObject({ kind: 'killed', invariantKind: 'consequence' });
  });

  it('a mutant that takes every recorded step alike really has the identical graph (the step check is not trusted blindly)', () => {
    // Acts only after a peer death: never in this footing.
    const m = byName('fenceClient: drop action confirmFence in open always');
    expect(firstDifference(m.build(), base.steps)).toBeNull();
    const r = exploreMutant(m.build(), base, caps);
    expect(r).toMatchObject({ kind: 'clean', same: true, unexplored: true });
    const d = new GraphDigest();
    exploreComposed(withMachine(scenarioSetup(footing).cfg, m.build()), { scenario: footing, variant: 'x' }, { ...FULL_GRAPH, hooks: d.hooks });
    expect(d.digest()).toBe(base.digest);
  });

  it('after a process dies, its armed deadlines hold back none of the living side (they never fire)', () => {
    // Found by the peer-death footing: the shipped machines broke L2 and M4 there only because the dead
    // generation side's kvTransferTimeout, armed first with the same delay, gated the context side's.
    const cfg = scenarioSetup('footing/peer-death-shm').cfg;
    const { state, steps } = replayComposed(cfg, ['ctx loop r1: prefill', 'gen loop r1: pop', 'net gen→ctx: deliver info(r1@1)', 'generation process dies']);
    expect(steps).toBe(4);
    expect(state.timers.some((t) => t.key.startsWith('g:'))).toBe(true);
    const labels = new ComposedWorld(cfg).choices(state).map((c) => c.label);
    expect(labels.filter((l) => l.startsWith('deadline c:')).length).toBeGreaterThan(0);
    expect(labels.some((l) => l.startsWith('deadline g:'))).toBe(false);
  });

  it('a mutant whose step never ends (an eventless loop without its guard) is stopped with an exception, not the heap', () => {
    const m = byName('fenceClient: drop guard pendingAfterDeath in open always').build();
    // A pending fence: once the peer is gone (or at once, without the guard) the eventless branch fires for ever.
    const snap = m.resolveState({ value: 'open', context: { alive: true, pending: ['r1'] } } as never);
    expect(() => pureTransition(guarded(m), snap, { type: 'PEER_GONE' })).toThrow(/never ends/);
    // The original takes the same step and stops.
    const orig = productionMachines().find((x) => x.id === 'fenceClient')!;
    const [next] = pureTransition(guarded(orig), orig.resolveState({ value: 'open', context: { alive: true, pending: ['r1'] } } as never), { type: 'PEER_GONE' });
    expect(next.context).toMatchObject({ alive: false, pending: [] });
  });

  it('bisimilarity: the original is bisimilar to itself; a hidden difference is bisimilar; an observable one is not', () => {
    const it = new Interner();
    const cfg = scenarioSetup(footing).cfg;
    const orig = observedGraph(cfg, 400_000, it);
    expect(orig.truncated).toBe(false);
    expect(bisimilar(orig, orig)).toBe(true);
    // Drops an action the wiring does not act on in this world: a different digest, the same observations.
    const hidden = byName('requestLifecycle: drop action respondError in DISAGG_TRANS_ERROR entry');
    const h = exploreMutant(hidden.build(), base, caps);
    expect(h).toMatchObject({ kind: 'clean', same: false, truncated: false, bisimilar: true });
    expect(classify(hidden, [h], [base], 0)).toMatchObject({ verdict: 'equivalent', why: expect.stringMatching(/^bisimilar/) });
    // Answers a fence by finishing at once: the wire and the memory differ.
    const seen = byName('contextSend: retarget sender.queued FENCE unwinding → finished');
    expect(bisimilar(orig, observedGraph(withMachine(cfg, seen.build()), 400_000, it))).toBe(false);
  });

  it('partition refinement tells apart graphs that differ only deep down, and merges duplicated ones', () => {
    // a: 0 -x-> 1 -y-> 2 ; b: 0 -x-> 1 -y-> 2 and 0 -x-> 3 -y-> 4 (a duplicate branch): bisimilar.
    const g = (obs: number[], e: Array<[number, number, number]>): ObservedGraph => ({ obs, from: e.map((x) => x[0]), label: e.map((x) => x[1]), to: e.map((x) => x[2]), states: obs.length, truncated: false });
    const a = g([0, 1, 2], [[0, 10, 1], [1, 11, 2]]);
    const b = g([0, 1, 2, 1, 2], [[0, 10, 1], [1, 11, 2], [0, 10, 3], [3, 11, 4]]);
    expect(bisimilar(a, b)).toBe(true);
    // c: the second branch ends in a different observation two steps down: not bisimilar.
    const c = g([0, 1, 2, 1, 3], [[0, 10, 1], [1, 11, 2], [0, 10, 3], [3, 11, 4]]);
    expect(bisimilar(a, c)).toBe(false);
    // d: same observations, one step label differs.
    const d = g([0, 1, 2], [[0, 10, 1], [1, 12, 2]]);
    expect(bisimilar(a, d)).toBe(false);
    expect(observedLabel('deadline c:r1.send: kvTransferTimeout in sender.queued')).toBe('deadline c:r1.send: kvTransferTimeout');
    expect(observedLabel('net ctx→gen: deliver ready(r1)')).toBe('net ctx→gen: deliver ready(r1)');
  });

  it('verdicts: equivalent needs every footing complete and alike; a difference only in a truncated shipped scenario stays undecided', () => {
    const m = byName('blockLease: drop action recordProof in exposed RELEASE[0]');
    const f = { scenario: footing, truncated: false, decides: true };
    const s = { scenario: 'composed/reuse', truncated: true, decides: false };
    const same: ScenarioOutcome = { scenario: footing, kind: 'clean', same: true, truncated: false, states: 10, edges: 20, ms: 0, unexplored: true };
    const shippedSame: ScenarioOutcome = { scenario: 'composed/reuse', kind: 'clean', same: true, truncated: true, states: 6000, edges: 20, ms: 0, unexplored: true };
    expect(classify(m, [same, shippedSame], [f, s], 0).verdict).toBe('equivalent');
    expect(classify(m, [same, { ...shippedSame, same: false, unexplored: false }], [f, s], 0)).toMatchObject({ verdict: 'survived', why: expect.stringMatching(/^undecided: identical to the original on every footing; differs only in composed\/reuse/) });
    expect(classify(m, [{ ...same, same: false, bisimilar: false, differsAt: 'x' }, shippedSame], [f, s], 0)).toMatchObject({ verdict: 'survived', why: expect.stringMatching(/^complete exploration differs/) });
    expect(classify(m, [{ ...same, same: false, bisimilar: true }, shippedSame], [f, s], 0).verdict).toBe('equivalent');
    // A footing whose original exploration did not complete decides nothing.
    expect(classify(m, [same, shippedSame], [{ ...f, truncated: true }, s], 0)).toMatchObject({ verdict: 'survived', why: expect.stringMatching(/^undecided: truncated/) });
    // Only shipped scenarios: never equivalent.
    expect(classify(m, [shippedSame], [s], 0)).toMatchObject({ verdict: 'survived', why: expect.stringMatching(/^undecided/) });
  });
});
