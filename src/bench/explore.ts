import { initialTransition, transition } from 'xstate';
import { contextSendMachine } from '../../machines/index.js';
import { combinations } from '../explore/catalog.js';
import { exploreCombination } from '../explore/explorer.js';
import { engineStats } from '../explore/world.js';
import { productionMachines } from '../explore/composed.js';
import type { Bounds } from '../explore/composed.js';
import type { ExploreOptions } from '../explore/composedExplorer.js';
import { exploreComposed } from '../explore/composedExplorer.js';
import { COMPOSED_SCENARIOS, exploreComposedCombination } from '../explore/composedCatalog.js';

/**
 * The composed world at bounds small enough to be explored exhaustively with and without each
 * reduction: the factor is the ratio of the state counts, measured here in the same run.
 * - partial-order reduction (silent steps): one request, one handle, with and without it;
 * - handle symmetry: one request, two handles (both with the partial-order reduction), with and without it.
 * Then the shipped composed scenarios at their default bounds and budget: states per second.
 */
interface Run {
  states: number;
  edges: number;
  ms: number;
  truncated: boolean;
}
function composedReduction(): {
  por: { bounds: Bounds; full: Run; reduced: Run; factor: number };
  symmetry: { bounds: Bounds; plain: Run; symmetric: Run; factor: number };
  shipped: Array<Run & { scenario: string; searchMs: number; walkedSteps: number; statesPerSecond: number }>;
} {
  const base: Bounds = { requests: 1, handlesPerRequest: 1, cancels: 0, duplicates: 0, reorder: 0, losses: 0, peerDeath: 0 };
  const cfg = (bounds: Bounds) => ({ bounds, backend: 'shm' as const, genBlocks: 1, timedDeadlines: true, machines: productionMachines() });
  const run = (bounds: Bounds, opts: ExploreOptions): Run => {
    // The search alone: M7's prompt runs (the same in both of a pair) would blur the ratios.
    const r = exploreComposed(cfg(bounds), { scenario: 'bench', variant: 'shipped' }, { ...opts, promptRun: false });
    return { states: r.states, edges: r.edges, ms: r.ms, truncated: r.truncated };
  };
  const full = run(base, { reduce: false, symmetry: false });
  const reduced = run(base, { reduce: true, symmetry: false });
  const two: Bounds = { ...base, handlesPerRequest: 2 };
  const plain = run(two, { reduce: true, symmetry: false });
  const symmetric = run(two, { reduce: true, symmetry: true });
  const shipped = Object.keys(COMPOSED_SCENARIOS).map((scenario) => {
    const r = exploreComposedCombination(scenario, 'shipped');
    // States per second of the breadth-first search (the random walks after it are not states).
    return { scenario, states: r.states, edges: r.edges, ms: r.ms, searchMs: r.searchMs, walkedSteps: r.walkedSteps, truncated: r.truncated, statesPerSecond: Math.round(r.states / (r.searchMs / 1000)) };
  });
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  return {
    por: { bounds: base, full, reduced, factor: ratio(full.states, reduced.states) },
    symmetry: { bounds: two, plain, symmetric, factor: ratio(plain.states, symmetric.states) },
    shipped,
  };
}

export const description = 'full exploration of every scenario × variant: states per second, total time, ratio to raw xstate transition cost';

/** Median of a few runs of raw `transition()` calls, in microseconds per call: xstate's own cost. */
function rawTransitionMicros(calls: number): number {
  const [s0] = initialTransition(contextSendMachine, { requestId: 'r' });
  const events = [{ type: 'REQUEST_INFO' as const }, { type: 'CANCEL' as const }, { type: 'STATUS_POLL' as const }];
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) transition(contextSendMachine, s0, events[i % events.length]!);
    runs.push(((performance.now() - t0) * 1000) / calls);
  }
  return runs.sort((a, b) => a - b)[2]!;
}

export async function runBench({ json }: { json: boolean; args: string[] }): Promise<number> {
  const before = engineStats.transitions;
  const t0 = performance.now();
  let states = 0;
  let edges = 0;
  const rows = [];
  for (const c of combinations()) {
    const r = exploreCombination(c);
    states += r.states;
    edges += r.edges;
    rows.push({ scenario: r.scenario, variant: r.variant, states: r.states, edges: r.edges, ms: r.ms });
  }
  const totalMs = performance.now() - t0;
  // Counted before the composed runs: the ratio below is about the one-sided combinations timed above.
  const machineTransitions = engineStats.transitions - before;
  const composed = composedReduction();
  const rawUs = rawTransitionMicros(20_000);
  const rawMs = (rawUs * machineTransitions) / 1000;
  const result = {
    combinations: rows.length,
    states,
    edges,
    totalMs: Math.round(totalMs),
    statesPerSecond: Math.round(states / (totalMs / 1000)),
    machineTransitions,
    rawTransitionUs: Number(rawUs.toFixed(2)),
    ratioToRawXstate: Number((totalMs / rawMs).toFixed(2)),
  };
  if (json) console.log(JSON.stringify({ ...result, rows, composed }));
  else {
    const b = (x: Bounds) => `${x.requests} request, ${x.handlesPerRequest} handle${x.handlesPerRequest > 1 ? 's' : ''}, no faults`;
    const p = composed.por;
    const y = composed.symmetry;
    const rate = (r: Run) => `${Math.round(r.states / (r.ms / 1000))} states/s`;
    console.log(`composed, partial-order reduction (${b(p.bounds)}, exhaustive): ${p.full.states} states without (${p.full.ms} ms), ${p.reduced.states} with (${p.reduced.ms} ms, ${rate(p.reduced)}): ×${p.factor}`);
    console.log(`composed, handle symmetry (${b(y.bounds)}, exhaustive, both with partial-order reduction): ${y.plain.states} states without (${y.plain.ms} ms), ${y.symmetric.states} with (${y.symmetric.ms} ms, ${rate(y.symmetric)}): ×${y.factor}`);
    for (const r of composed.shipped) console.log(`composed, ${r.scenario} shipped (default bounds and budget${r.truncated ? ', truncated' : ''}): ${r.states} states, ${r.edges} edges searched in ${r.searchMs} ms (${r.statesPerSecond} states/s), then ${r.walkedSteps} random-walk steps; ${r.ms} ms in all`);
    console.log(`combinations        ${result.combinations}`);
    console.log(`states / edges      ${states} / ${edges}`);
    console.log(`total               ${result.totalMs} ms (goal < 30000 ms)`);
    console.log(`states per second   ${result.statesPerSecond}`);
    console.log(`machine transitions ${machineTransitions} (raw xstate transition(): ${result.rawTransitionUs} µs each = ${Math.round(rawMs)} ms)`);
    console.log(`explorer / raw      ${result.ratioToRawXstate}× (graph search, invariant checks and liveness analysis on top of xstate)`);
  }
  return totalMs < 30_000 ? 0 : 1;
}
