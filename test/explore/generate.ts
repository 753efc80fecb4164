import { getShortestPaths, getSimplePaths } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { SCENARIOS, scenarioFor } from '../../src/explore/catalog.js';
import { buildGraph, pathTo } from '../../src/explore/explorer.js';
import { checkEdge, checkState } from '../../src/explore/invariants.js';
import { worldEvents, worldLogic } from '../../src/explore/logic.js';
import { diffWorlds, LiveWorld } from '../../src/explore/replay.js';
import type { ScenarioDefinition, WorldState } from '../../src/explore/world.js';
import { initialWorld, serializeWorld, step } from '../../src/explore/world.js';

/**
 * Tests generated at collection time from the explorer, for every shipped scenario:
 * - one per shortest path to every reachable world (@xstate/graph getShortestPaths),
 * - one per transition not already on those paths (edge coverage),
 * - every simple path where their number is tractable (@xstate/graph getSimplePaths).
 * Each replays its steps on fresh live actors and, after every step, checks that each actor is in the
 * explored state with the explored context, and that no safety invariant is violated.
 */
const SIMPLE_PATH_LIMIT = 2_000;

function replay(sc: ScenarioDefinition, labels: string[]): void {
  const live = new LiveWorld(sc);
  try {
    let pure: WorldState = initialWorld(sc);
    expect(diffWorlds(pure, live.state), 'initial world').toEqual([]);
    for (const [i, label] of labels.entries()) {
      const before = live.state;
      live.apply(label, pure);
      pure = step(sc, pure, label);
      const where = `after step ${i + 1} "${label}"`;
      expect(diffWorlds(pure, live.state), where).toEqual([]);
      const now = { ...live.state, last: pure.last };
      expect(checkState(sc, now), where).toEqual([]);
      expect(checkEdge(sc, before, now), where).toEqual([]);
    }
  } finally {
    live.stop();
  }
}

const name = (labels: string[]) => (labels.length === 0 ? '(start)' : labels.map((l) => l.replace(/\s+/g, ' ')).join(' > '));

/** Register the generated tests of one shipped scenario (one test file per scenario, so they run in parallel). */
export function generateScenarioTests(scenarioName: string): void {
  if (!(scenarioName in SCENARIOS)) throw new Error(`unknown scenario ${scenarioName}`);
  const sc = scenarioFor({ scenario: scenarioName, variant: 'shipped' });
  const serializeState = (s: { context: WorldState }) => serializeWorld(s.context);
  const statePaths = getShortestPaths(worldLogic(sc), { events: worldEvents(sc) as never, serializeState: serializeState as never }).map((p) =>
    p.steps.slice(1).map((s) => s.event.type),
  );

  // Edge coverage: every explored edge not already the last step of a state path.
  const g = buildGraph(sc);
  const covered = new Set(statePaths.flatMap((p) => p.map((_, i) => p.slice(0, i + 1).join('\u0000'))));
  const edgePaths: string[][] = [];
  g.out.forEach((edges, from) => {
    const prefix = pathTo(g, from);
    for (const e of edges) {
      const p = [...prefix, e.label];
      const key = p.join('\u0000');
      if (!covered.has(key)) (covered.add(key), edgePaths.push(p));
    }
  });

  describe(`${scenarioName}: shortest path to every reachable world (${statePaths.length})`, () => {
    it.each(statePaths.map((p) => [name(p), p] as const))('%s', (_n, p) => replay(sc, [...p]));
  });

  describe(`${scenarioName}: every transition (${edgePaths.length} beyond the shortest paths)`, () => {
    it('covers every explored edge', () => {
      const edges = g.out.reduce((n, e) => n + e.length, 0);
      // Every edge is the last step of exactly one generated path.
      expect(new Set([...statePaths, ...edgePaths].map((p) => p.join('\u0000'))).size).toBeGreaterThanOrEqual(edges);
    });
    it.each(edgePaths.map((p) => [name(p), p] as const))('%s', (_n, p) => replay(sc, [...p]));
  });

  if (g.keys.length <= 100) {
    const simple = getSimplePaths(worldLogic(sc), { events: worldEvents(sc) as never, serializeState: serializeState as never });
    if (simple.length <= SIMPLE_PATH_LIMIT) {
      const simplePaths = simple.map((p) => p.steps.slice(1).map((s) => s.event.type));
      describe(`${scenarioName}: every simple path (${simplePaths.length})`, () => {
        it.each(simplePaths.map((p) => [name(p), p] as const))('%s', (_n, p) => replay(sc, [...p]));
      });
    }
  }
}
