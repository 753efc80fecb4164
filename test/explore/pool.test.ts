import { describe, expect, it } from 'vitest';

/**
 * `xferstate explore` explores the composed combinations on worker threads (one per core). The pool
 * only runs from the built package (a worker cannot load TypeScript), so this test imports `dist/`
 * (built by `pretest`) and checks that the workers' results are the in-thread results, in order.
 */
describe('composed exploration on worker threads', () => {
  it('gives the same results as exploring in this thread, in the same order', { timeout: 180_000 }, async () => {
    const pool = (await import('../../dist/src/explore/composedPool.js')) as typeof import('../../src/explore/composedPool.js');
    const catalog = (await import('../../dist/src/explore/composedCatalog.js')) as typeof import('../../src/explore/composedCatalog.js');
    const combos = [
      { scenario: 'composed/reuse', variant: 'fenceBeforeTransfer' },
      { scenario: 'composed/handles', variant: 'refusedCancelLoop' },
    ];
    const inWorkers = await pool.exploreComposedInWorkers(combos, false, 2);
    expect(inWorkers).not.toBeNull();
    const pick = (r: { scenario: string; variant: string; states: number; edges: number; truncated: boolean; violations: Array<{ invariant: string; path: string[] }> }) => ({
      scenario: r.scenario,
      variant: r.variant,
      states: r.states,
      edges: r.edges,
      truncated: r.truncated,
      violations: r.violations.map((v) => [v.invariant, v.path.length]),
    });
    const here = combos.map((c) => pick(catalog.exploreComposedCombination(c.scenario, c.variant)));
    expect(inWorkers!.map(pick)).toEqual(here);
    expect(here.map((r) => r.violations.length > 0)).toEqual([true, true]);
  });

  it('declines when there is nothing to share', async () => {
    const pool = (await import('../../dist/src/explore/composedPool.js')) as typeof import('../../src/explore/composedPool.js');
    expect(await pool.exploreComposedInWorkers([{ scenario: 'composed/reuse', variant: 'shipped' }], false, 2)).toBeNull();
  });
});
