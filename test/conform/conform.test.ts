import { expect, it } from 'vitest';
import { composedGraph, coveringPaths, runConform } from '../../src/conform/conform.js';
import { composedConfig } from '../../src/explore/composedCatalog.js';

it('covering paths take every edge of the explored graph at least once', () => {
  const g = composedGraph(composedConfig('composed/reuse', 'shipped'), 150);
  const paths = coveringPaths(g);
  const taken = new Set(paths.flat());
  expect(taken.size).toBe(g.edges.length);
  // Each path starts at the initial world and follows edges end to end.
  for (const p of paths) {
    expect(g.edges[p[0]!]!.from).toBe(0);
    for (let i = 1; i < p.length; i++) expect(g.edges[p[i]!]!.from).toBe(g.edges[p[i - 1]!]!.to);
  }
});

it('the real servers follow the composed model step by step (actor states, messages, reports, block bytes)', async () => {
  const r = await runConform({ scenario: 'composed/reuse', maxStates: 200 });
  expect(r.divergences).toEqual([]);
  expect(r.edgesCovered / r.edgesTotal).toBeGreaterThanOrEqual(0.95);
}, 180_000);

it('a server that decides differently from the model is caught (canary: its blocks freed without proof)', async () => {
  // The model runs the shipped machines; the real servers run the free-on-cancel lease.
  const r = await runConform({ scenario: 'composed/reuse', maxStates: 200, realVariants: ['freeOnCancel'] });
  expect(r.divergences.length).toBeGreaterThan(0);
  expect(r.divergences[0]!.expected).toMatch(/lease/);
}, 180_000);
