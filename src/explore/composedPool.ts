import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ComposedResult } from './composedExplorer.js';

/**
 * The composed combinations explored on worker threads, one per core: each exploration is independent
 * and deterministic, so the results are the same as in one thread, in the same order. Null when the
 * worker cannot run (from TypeScript sources, as under vitest) or there is nothing to share.
 */
export async function exploreComposedInWorkers(combos: ReadonlyArray<{ scenario: string; variant: string }>, deep: boolean, workers = availableParallelism()): Promise<ComposedResult[] | null> {
  const file = new URL('./composedWorker.js', import.meta.url);
  const n = Math.min(workers, combos.length);
  if (n < 2 || !import.meta.url.endsWith('.js') || !existsSync(fileURLToPath(file))) return null;
  const results: ComposedResult[] = new Array(combos.length);
  let next = 0;
  const run = (w: Worker): Promise<void> =>
    new Promise((resolve, reject) => {
      const take = () => {
        if (next >= combos.length) return resolve();
        const i = next++;
        w.once('message', (m: { result?: ComposedResult; error?: string }) => {
          if (m.error !== undefined || !m.result) return reject(new Error(`explore worker: ${combos[i]!.scenario} × ${combos[i]!.variant}: ${m.error ?? 'no result'}`));
          results[i] = m.result;
          take();
        });
        w.postMessage({ ...combos[i]!, deep });
      };
      w.once('error', reject);
      take();
    });
  const pool = Array.from({ length: n }, () => new Worker(file));
  try {
    await Promise.all(pool.map(run));
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results;
}
