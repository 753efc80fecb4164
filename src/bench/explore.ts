import { initialTransition, transition } from 'xstate';
import { contextSendMachine } from '../../machines/index.js';
import { combinations } from '../explore/catalog.js';
import { exploreCombination } from '../explore/explorer.js';
import { engineStats } from '../explore/world.js';
import { productionMachines } from '../explore/composed.js';
import type { Bounds } from '../explore/composed.js';
import { exploreComposed } from '../explore/composedExplorer.js';

/**
 * The composed world at bounds small enough to be explored exhaustively both with and without the
 * partial-order reduction: the reduction factor is the ratio of the two state counts, measured here.
 */
function composedReduction(): { bounds: Bounds; full: { states: number; ms: number }; reduced: { states: number; ms: number; statesPerSecond: number }; factor: number } {
  const bounds: Bounds = { requests: 1, handlesPerRequest: 1, cancels: 0, duplicates: 0, reorder: 0, losses: 0, peerDeath: 0 };
  const cfg = { bounds, backend: 'shm' as const, genBlocks: 1, timedDeadlines: true, machines: productionMachines() };
  // The search alone: M7's prompt runs (the same in both) would blur the ratio.
  const full = exploreComposed(cfg, { scenario: 'bench', variant: 'shipped' }, { reduce: false, promptRun: false });
  const reduced = exploreComposed(cfg, { scenario: 'bench', variant: 'shipped' }, { reduce: true, promptRun: false });
  return {
    bounds,
    full: { states: full.states, ms: full.ms },
    reduced: { states: reduced.states, ms: reduced.ms, statesPerSecond: Math.round(reduced.states / (reduced.ms / 1000)) },
    factor: Number((full.states / reduced.states).toFixed(2)),
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
  const composed = composedReduction();
  const machineTransitions = engineStats.transitions - before;
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
    console.log(`composed (both sides, bounds ${JSON.stringify(composed.bounds)}): ${composed.full.states} states without reduction (${composed.full.ms} ms), ${composed.reduced.states} with (${composed.reduced.ms} ms, ${composed.reduced.statesPerSecond} states/s): reduction ×${composed.factor}`);
    console.log(`combinations        ${result.combinations}`);
    console.log(`states / edges      ${states} / ${edges}`);
    console.log(`total               ${result.totalMs} ms (goal < 30000 ms)`);
    console.log(`states per second   ${result.statesPerSecond}`);
    console.log(`machine transitions ${machineTransitions} (raw xstate transition(): ${result.rawTransitionUs} µs each = ${Math.round(rawMs)} ms)`);
    console.log(`explorer / raw      ${result.ratioToRawXstate}× (graph search, invariant checks and liveness analysis on top of xstate)`);
  }
  return totalMs < 30_000 ? 0 : 1;
}
