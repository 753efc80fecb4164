import { availableParallelism } from 'node:os';
import { compiledWorker, WorkerPool } from '../core/workerPool.js';
import { exploreComposedCombination } from './composedCatalog.js';
import type { ComposedResult } from './composedExplorer.js';

type Job = { scenario: string; variant: string; deep: boolean };

/**
 * The composed combinations explored on worker threads, one per core: each exploration is independent
 * and deterministic, so the results are the same as in one thread, in the same order. Null when the
 * worker cannot run (from TypeScript sources, as under vitest) or there is nothing to share.
 */
export async function exploreComposedInWorkers(combos: ReadonlyArray<{ scenario: string; variant: string }>, deep: boolean, workers = availableParallelism()): Promise<ComposedResult[] | null> {
  const file = compiledWorker(new URL('./composedWorker.js', import.meta.url), import.meta.url);
  const n = Math.min(workers, combos.length);
  if (n < 2 || file === null) return null;
  const pool = new WorkerPool<Job, ComposedResult>(n, file, (j) => exploreComposedCombination(j.scenario, j.variant, { deep: j.deep }));
  try {
    return await Promise.all(combos.map((c) => pool.run({ ...c, deep })));
  } finally {
    await pool.close();
  }
}
